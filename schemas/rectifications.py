"""Request and response shapes of rectifications, notifications and notification preferences."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field

from schemas.common import PageQuery, StrictModel

RectificationStatus = Literal["open", "submitted", "verified", "rejected", "cancelled"]
Language = Literal["zh-CN", "en", "es"]


class FindingSummary(BaseModel):
    id: str
    item_id: str
    section_id: str | None = None
    severity: str
    critical: bool = False
    answer: dict[str, Any] | None = None
    photo_ids: list[str] = Field(default_factory=list, description="The inspector's photos")
    status: str = "open"
    fixed_on_spot: bool = False


class Extension(BaseModel):
    requested_due_at: datetime
    reason: str
    status: Literal["pending", "approved", "refused"]
    requested_by: str | None = None
    requested_at: datetime | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str | None = None


class RectificationPublic(BaseModel):
    id: str
    finding_id: str
    audit_id: str
    branch_id: str
    region_id: str | None = None
    item_id: str
    item_text: str = Field(description="The checklist item in the caller's language")
    severity: str
    status: RectificationStatus
    overdue: bool
    due_at: datetime
    due_at_local: str = Field(description="The deadline with the branch's UTC offset")
    timezone: str
    assignee_id: str | None = None
    note: str | None = None
    photo_ids: list[str] = Field(default_factory=list, description="The branch's after photos")
    inspector_photo_ids: list[str] = Field(default_factory=list)
    submitted_by: str | None = None
    verified_by: str | None = None
    extension: Extension | None = None
    escalation_level: int = 0
    next_reminder_at: datetime | None = None
    finding: FindingSummary | None = None
    created_at: datetime
    closed_at: datetime | None = None


class HistoryEntry(BaseModel):
    action: str
    at: datetime
    by: str | None = None
    role: str | None = None
    from_: str | None = Field(default=None, alias="from")
    to: str
    comment: str | None = None
    due_at: datetime | None = None

    model_config = {"populate_by_name": True, "extra": "allow"}


class RectificationDetail(RectificationPublic):
    history: list[HistoryEntry] = Field(default_factory=list)


class RectificationQuery(PageQuery):
    branch_id: str | None = Field(default=None, max_length=64)
    status: RectificationStatus | None = None
    overdue: bool | None = None
    lang: Language | None = None


class LanguageQuery(StrictModel):
    lang: Language | None = None


class SubmitFix(StrictModel):
    note: str = Field(default="", max_length=4000)


class VerifyFix(StrictModel):
    comment: str = Field(default="", max_length=4000)


class RejectFix(StrictModel):
    comment: str = Field(min_length=1, max_length=4000)
    due_at: AwareDatetime | None = Field(default=None, description="New deadline; default: the policy again")


class ExtensionRequest(StrictModel):
    requested_due_at: AwareDatetime
    reason: str = Field(min_length=1, max_length=4000)


class ExtensionDecision(StrictModel):
    approve: bool
    comment: str = Field(default="", max_length=4000)


class NotificationPublic(BaseModel):
    id: str
    seq: int = Field(description="Per-user order; the SSE event id")
    kind: str
    title: str
    body: str
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    read_at: datetime | None = None


class NotificationQuery(PageQuery):
    unread: bool | None = None


class UnreadCount(BaseModel):
    count: int


class NotificationPreferences(StrictModel):
    in_app: bool = True
    email: bool = True
    webhook: bool = False
