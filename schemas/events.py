"""Event schemas: one payload model per event type, past-tense dotted names, versioned."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Actor(BaseModel):
    id: str | None = None
    role: str | None = None
    kind: str = Field(default="user", description="user | system")


class Subject(BaseModel):
    type: str
    id: str


class EventEnvelope(BaseModel):
    """What every event carries, as stored in the outbox and served by the event feed."""

    id: str
    type: str
    schema_version: int
    occurred_at: datetime
    actor: Actor
    subject: Subject
    subject_ids: dict[str, str] = Field(default_factory=dict, description="audit_id, branch_id, ... for filtering")
    payload: dict[str, Any]
    seq: int | None = Field(default=None, description="Position in the feed; assigned shortly after commit")


class EventPayload(BaseModel):
    """Base for payloads; each subclass names its event type and schema version."""

    model_config = ConfigDict(extra="forbid")
    event_type: str = Field(default="", exclude=True)


EVENT_TYPES: dict[str, tuple[type[BaseModel], int]] = {}


def event(name: str, version: int = 1) -> Any:
    """Register a payload model under its event type name."""

    def register(cls: type[BaseModel]) -> type[BaseModel]:
        EVENT_TYPES[name] = (cls, version)
        cls.__event_type__ = name  # type: ignore[attr-defined]
        cls.__event_version__ = version  # type: ignore[attr-defined]
        return cls

    return register


def event_name_of(model: type[BaseModel]) -> str:
    """The event type a payload model is registered under."""
    name = getattr(model, "__event_type__", None)
    if name is None:
        raise TypeError(f"{model.__name__} is not a registered event payload")
    return str(name)


def event_type_of(payload: BaseModel) -> tuple[str, int]:
    name = getattr(type(payload), "__event_type__", None)
    if name is None:
        raise TypeError(f"{type(payload).__name__} is not a registered event payload")
    return name, int(type(payload).__event_version__)  # type: ignore[attr-defined]


# --- organisation -------------------------------------------------------------------------------


@event("user.created")
class UserCreated(BaseModel):
    user_id: str
    username: str
    role: str
    region_id: str | None = None
    branch_id: str | None = None


@event("region.created")
class RegionCreated(BaseModel):
    region_id: str
    name: str


@event("branch.created")
class BranchCreated(BaseModel):
    branch_id: str
    code: str
    region_id: str
    timezone: str


@event("webhook.subscription_disabled")
class WebhookSubscriptionDisabled(BaseModel):
    subscription_id: str
    url: str
    consecutive_failures: int
    last_error: str | None = None


# --- administration (server/services/users.py, organisation.py, programs.py, checklists.py, webhooks.py) ---


@event("user.updated")
class UserUpdated(BaseModel):
    user_id: str
    changed: list[str] = Field(description="Names of the fields that changed")
    role: str
    active: bool
    sessions_ended: bool = Field(description="A deactivation or a role or scope change ends every session")


@event("user.deactivated")
class UserDeactivated(BaseModel):
    user_id: str
    returned_assignments: int = Field(description="Visits not started, back with compliance to reassign")


@event("region.updated")
class RegionUpdated(BaseModel):
    region_id: str
    changed: list[str]


@event("branch.updated")
class BranchUpdated(BaseModel):
    branch_id: str
    changed: list[str]
    timezone: str
    previous_timezone: str | None = Field(default=None, description="Set when the time zone changed")
    moved_due_dates: int = Field(default=0, description="Open work moved to the same local time in the new zone")


@event("branch.closed")
class BranchClosed(BaseModel):
    branch_id: str
    reason: str
    open_assignments: int
    open_audits: int
    open_rectifications: int


@event("program.updated")
class ProgramUpdated(BaseModel):
    program_id: str
    changed: list[str]


@event("program.cancelled")
class ProgramCancelled(BaseModel):
    program_id: str
    reason: str
    cancelled_assignments: int
    kept_assignments: int


# Assignment events never carry the assignee or the time of a covert visit: integrations relay them.
@event("assignment.updated")
class AssignmentUpdated(BaseModel):
    assignment_id: str
    program_id: str
    branch_id: str
    changed: list[str] = Field(description="assignee and/or window")


@event("assignment.cancelled")
class AssignmentCancelled(BaseModel):
    assignment_id: str
    program_id: str
    branch_id: str
    reason: str


@event("assignment.returned")
class AssignmentReturned(BaseModel):
    """A visit not started lost its assignee (deactivated): compliance reassigns it."""

    assignment_id: str
    program_id: str
    branch_id: str
    reason: str


@event("checklist.retired")
class ChecklistRetired(BaseModel):
    key: str
    current_version: int
    reason: str | None = None


@event("checklist.restored")
class ChecklistRestored(BaseModel):
    key: str
    current_version: int


@event("webhook.updated")
class WebhookUpdated(BaseModel):
    subscription_id: str
    active: bool
    event_types: list[str]


@event("webhook.secret_rotated")
class WebhookSecretRotated(BaseModel):
    subscription_id: str
    previous_secret_valid_until: datetime


@event("webhook.delivery_redelivered")
class WebhookDeliveryRedelivered(BaseModel):
    subscription_id: str
    delivery_id: str
    event_id: str
