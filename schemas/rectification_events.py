"""Event payloads of the rectification workflow, reminders and notifications."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from schemas.events import event


class RectificationEventBase(BaseModel):
    """What every rectification.* event carries."""

    rectification_id: str
    finding_id: str
    audit_id: str
    branch_id: str
    status: str
    due_at: datetime


@event("rectification.created")
class RectificationCreated(RectificationEventBase):
    item_id: str
    severity: str
    assignee_id: str | None = None
    fixed_on_spot: bool = False


@event("rectification.submitted")
class RectificationSubmitted(RectificationEventBase):
    submitted_by: str
    photo_ids: list[str] = Field(default_factory=list)


@event("rectification.verified")
class RectificationVerified(RectificationEventBase):
    verified_by: str
    comment: str = ""


@event("rectification.rejected")
class RectificationRejected(RectificationEventBase):
    rejected_by: str
    comment: str
    previous_due_at: datetime


@event("rectification.overdue")
class RectificationOverdue(RectificationEventBase):
    pass


@event("rectification.escalated")
class RectificationEscalated(RectificationEventBase):
    level: int
    recipient_ids: list[str] = Field(default_factory=list)


@event("rectification.extension_requested")
class RectificationExtensionRequested(RectificationEventBase):
    requested_due_at: datetime
    reason: str
    requested_by: str


@event("rectification.extension_decided")
class RectificationExtensionDecided(RectificationEventBase):
    approved: bool
    requested_due_at: datetime
    decided_by: str
    comment: str = ""


@event("rectification.cancelled")
class RectificationCancelled(RectificationEventBase):
    reason: str


@event("reminder.sent")
class ReminderSent(BaseModel):
    rectification_id: str
    recipient_id: str
    level: int
    step: int
    branch_id: str
    due_at: datetime
    skipped_steps: int = 0


@event("notification.created")
class NotificationCreated(BaseModel):
    """Only for users who chose the webhook channel: integrations relay it."""

    notification_id: str
    user_id: str
    kind: str
    title: str
    rectification_id: str | None = None
