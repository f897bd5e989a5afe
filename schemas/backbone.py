"""Shapes of the event backbone's API: event feed, handler failures, webhooks and the trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.common import StrictModel

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret


class EventFeedQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after: str | None = Field(default=None, max_length=20, pattern=r"^\d+$",
                              description="Resume after this position (a previous next_cursor); 0 = start")
    cursor: str | None = Field(default=None, max_length=20, pattern=r"^\d+$", description="Alias of `after`")
    type: list[str] | str | None = Field(default=None,
                                         description="Only these event types (repeat or comma-separate)")
    limit: int = Field(default=50, ge=1, le=200)

    def types(self) -> list[str]:
        raw = [self.type] if isinstance(self.type, str) else (self.type or [])
        return sorted({t.strip() for item in raw for t in item.split(",") if t.strip()})

    def after_seq(self) -> int:
        return int(self.after or self.cursor or 0)


class FailureQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str | None = Field(default=None, pattern=r"^(retrying|queued|parked)$")
    handler: str | None = Field(default=None, max_length=100)
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=20, pattern=r"^\d+$")


class HandlerFailurePublic(BaseModel):
    id: str
    handler: str
    event_id: str
    event_type: str
    subject: str
    seq: int
    attempts: int
    status: str = Field(description="retrying | queued (behind an earlier failure of its subject) | parked")
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    first_failed_at: datetime | None = None
    updated_at: datetime | None = None


class WebhookCreate(StrictModel):
    url: str = Field(min_length=8, max_length=2000, description="http(s) URL receiving POSTed events")
    event_types: list[str] = Field(min_length=1, max_length=100, description='Event types, or ["*"] for all')
    secret: str | None = Field(default=None,
                               description="whsec_ + base64 of 24-64 random bytes; generated if absent")
    description: str | None = Field(default=None, max_length=500)

    @field_validator("event_types")
    @classmethod
    def _types_are_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if name != "*" and not all(part.isidentifier() for part in name.split(".")):
                raise ValueError(f"{name!r} is not an event type")
        return sorted(set(value))


class WebhookPublic(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str | None = None
    active: bool
    consecutive_failures: int
    created_at: datetime
    created_by: str | None = None
    disabled_at: datetime | None = None
    disabled_reason: str | None = None


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="Shown once: verify the webhook-signature header with it")


class DeliveryAttempt(BaseModel):
    at: datetime
    status_code: int | None = None
    duration_ms: float
    error: str | None = None


class WebhookDeliveryPublic(BaseModel):
    id: str
    subscription_id: str
    event_id: str
    event_type: str
    status: str = Field(description="pending | delivered | failed | cancelled")
    attempts: int
    next_attempt_at: datetime | None = None
    created_at: datetime
    delivered_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    log: list[DeliveryAttempt] = Field(default_factory=list)


class TrailQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entity_id: str | None = Field(default=None, max_length=200)
    related_id: str | None = Field(default=None, max_length=200)
    actor_id: str | None = Field(default=None, max_length=200)
    action: str | None = Field(default=None, max_length=100)
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=500)


class TrailEntryPublic(BaseModel):
    id: str
    at: datetime
    actor_id: str | None = None
    actor_role: str | None = None
    action: str
    entity_type: str | None = None
    entity_id: str | None = None
    related_ids: list[str] = Field(default_factory=list)
    summary: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = None
    client_address: str | None = None
    seq: int | None = Field(default=None, description="Position in the hash chain once sealed")
    hash: str | None = None
    sealed: bool
