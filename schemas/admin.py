"""Request and response shapes of administration: changing people, regions, branches, programs, visits,
checklists and webhooks after they were created. A field left out of a PATCH body is left as it was;
`null` clears a field that may be empty."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field, field_validator, model_validator

from schemas.audits import AssignmentPublic, ProgramPublic
from schemas.backbone import WebhookCreate, WebhookPublic
from schemas.checklist_api import ServedChecklist
from schemas.common import StrictModel
from schemas.org import BranchPublic, Language, Location, OpeningHours, Role

ID_FIELD = Field(default=None, min_length=1, max_length=64)


def _known_timezone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r}") from None
    return value


# --- people --------------------------------------------------------------------------------------


class UserUpdate(StrictModel):
    """PATCH /users/{id}: only the fields sent change."""

    display_name: str | None = Field(default=None, min_length=1, max_length=120)
    email: str | None = Field(default=None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")
    language: Language | None = None
    role: Role | None = None
    region_id: str | None = ID_FIELD
    branch_id: str | None = ID_FIELD
    home_branch_id: str | None = ID_FIELD
    active: bool | None = None

    @model_validator(mode="after")
    def not_empty(self) -> UserUpdate:
        if not self.model_fields_set:
            raise ValueError("send at least one field to change")
        for name in ("display_name", "language", "role", "active"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


# --- organisation --------------------------------------------------------------------------------


class RegionUpdate(StrictModel):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    code: str | None = Field(default=None, min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_-]+$")
    manager_user_id: str | None = ID_FIELD

    @model_validator(mode="after")
    def not_empty(self) -> RegionUpdate:
        if not self.model_fields_set:
            raise ValueError("send at least one field to change")
        for name in ("name", "code"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class BranchUpdate(StrictModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    address: str | None = Field(default=None, max_length=400)
    location: Location | None = None
    geofence_m: int | None = Field(default=None, ge=10, le=10_000)
    timezone: str | None = Field(default=None, max_length=64, description="An IANA time zone, e.g. Asia/Shanghai")
    opening_hours: OpeningHours | None = None
    head_user_id: str | None = ID_FIELD
    region_id: str | None = ID_FIELD

    _timezone = field_validator("timezone")(_known_timezone)

    @model_validator(mode="after")
    def not_empty(self) -> BranchUpdate:
        if not self.model_fields_set:
            raise ValueError("send at least one field to change")
        for name in self.model_fields_set - {"head_user_id"}:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class Reason(StrictModel):
    """Why: kept on the object and in the trail."""

    reason: str = Field(min_length=1, max_length=1000)


class OptionalReason(StrictModel):
    reason: str | None = Field(default=None, max_length=1000)


class OpenWork(BaseModel):
    """What a closed branch still has in flight, for compliance to finish or cancel."""

    assignments: list[AssignmentPublic]
    audits: list[dict[str, Any]] = Field(description="{id, status, program_id, started_at} of unfinished audits")
    rectifications: list[dict[str, Any]] = Field(description="{id, status, due_at} of open rectifications")


class BranchClosed(BaseModel):
    branch: BranchPublic
    open_work: OpenWork


# --- programs and visits -------------------------------------------------------------------------


class ProgramUpdate(StrictModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    starts_on: date | None = None
    ends_on: date | None = None

    @model_validator(mode="after")
    def not_empty(self) -> ProgramUpdate:
        if not self.model_fields_set:
            raise ValueError("send at least one field to change")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class ProgramCancelled(BaseModel):
    program: ProgramPublic
    cancelled_assignments: int = Field(description="Visits not started, now cancelled")
    kept_assignments: int = Field(description="Visits whose audit is under way or done: they finish normally")


class AssignmentUpdate(StrictModel):
    """A new assignee and/or a new window; the planning rules apply as when the program was planned."""

    assignee_id: str | None = Field(default=None, min_length=1, max_length=64)
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None

    @model_validator(mode="after")
    def something_to_change(self) -> AssignmentUpdate:
        if self.assignee_id is None and self.window_start is None and self.window_end is None:
            raise ValueError("send assignee_id, or window_start and window_end")
        if (self.window_start is None) != (self.window_end is None):
            raise ValueError("send window_start and window_end together")
        return self


# --- checklists ----------------------------------------------------------------------------------


class DefinitionError(BaseModel):
    loc: list[str | int]
    path: str
    msg: str
    line: int | None = None


class ChecklistValidation(BaseModel):
    """Every problem of a definition, checked without publishing; when valid, how the phone will show it."""

    valid: bool
    key: str | None = None
    item_count: int | None = None
    errors: list[DefinitionError]
    preview: dict[str, ServedChecklist] | None = Field(
        default=None, description="The served checklist in zh-CN, en and es (only when valid)")


class ChecklistState(BaseModel):
    key: str
    current_version: int
    retired: bool
    retired_at: datetime | None = None
    retired_reason: str | None = None


# --- webhooks ------------------------------------------------------------------------------------


class WebhookUpdate(StrictModel):
    active: bool | None = None
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=100)

    @field_validator("event_types")
    @classmethod
    def _types_are_names(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else WebhookCreate._types_are_names(value)

    @model_validator(mode="after")
    def something_to_change(self) -> WebhookUpdate:
        if self.active is None and self.event_types is None:
            raise ValueError("send active or event_types")
        return self


class WebhookSecretRotated(WebhookPublic):
    secret: str = Field(description="Shown only in this reply")
    previous_secret_valid_until: datetime = Field(
        description="Until then every delivery is signed with both secrets (two signatures in webhook-signature)")


# --- a person's logins -----------------------------------------------------------------------------


class SessionPublic(BaseModel):
    id: str
    created_at: datetime
    expires_at: datetime
    client_address: str | None = None


class SessionList(BaseModel):
    items: list[SessionPublic]
