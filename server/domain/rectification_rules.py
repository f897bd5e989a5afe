"""A rectification's states, the transitions between them and who may make each one (no I/O).

    open --submit--> submitted --verify--> verified
      ^                  |
      +-----reject-------+        (back to open with a new deadline; recorded as `rejected` in history)
    open|submitted --cancel--> cancelled (finding overturned on appeal)

`overdue` is a flag, not a state: past the deadline while not verified or cancelled. Extension requests
live beside the state: asked for while open, decided while still open or submitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.domain.access import BRANCH_HEAD, COMPLIANCE, INSPECTOR, REGIONAL_MANAGER
from server.errors import Forbidden, InvalidTransition, ValidationFailed, field_error

OPEN = "open"
SUBMITTED = "submitted"
VERIFIED = "verified"
REJECTED = "rejected"  # an action in history; the document returns to `open`
CANCELLED = "cancelled"
STATUSES = (OPEN, SUBMITTED, VERIFIED, REJECTED, CANCELLED)
# Still work to do: counted in audits.open_rectifications and eligible for reminders.
ACTIVE = frozenset({OPEN, SUBMITTED})
CLOSED = frozenset({VERIFIED, CANCELLED})

SYSTEM = "system"  # the role of the workflow's own changes (a cancellation after an appeal)
__all__ = ["BRANCH_HEAD", "COMPLIANCE", "INSPECTOR", "REGIONAL_MANAGER"]


@dataclass(frozen=True)
class Transition:
    """One action: the states it starts from, where it leads (None: the state stays) and who may take it."""

    action: str
    sources: frozenset[str]
    target: str | None
    roles: frozenset[str]


# The event each transition emits is a typed payload, written by server.services.rectifications.
TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        Transition("submit", frozenset({OPEN}), SUBMITTED, frozenset({BRANCH_HEAD})),
        Transition("verify", frozenset({SUBMITTED}), VERIFIED, frozenset({INSPECTOR, COMPLIANCE})),
        Transition("reject", frozenset({SUBMITTED}), OPEN, frozenset({INSPECTOR, COMPLIANCE})),
        Transition("request_extension", frozenset({OPEN}), None, frozenset({BRANCH_HEAD})),
        Transition("decide_extension", ACTIVE, None, frozenset({COMPLIANCE, REGIONAL_MANAGER})),
        Transition("cancel", ACTIVE, CANCELLED, frozenset({SYSTEM})),
    )
}


def transition(action: str, status: str) -> Transition:
    """The transition for `action` from `status`; InvalidTransition (409) when it is not allowed."""
    rule = TRANSITIONS[action]
    if status not in rule.sources:
        allowed = ", ".join(sorted(rule.sources))
        raise InvalidTransition(
            f"Cannot {action.replace('_', ' ')} a rectification that is {status} (allowed from: {allowed})"
        )
    return rule


def target_status(action: str, status: str) -> str:
    """The status after `action` (the same status for actions that do not move the state)."""
    rule = transition(action, status)
    return rule.target or status


def ensure_actor_may(
    action: str, role: str | None, user_id: str | None, rectification: dict[str, Any]
) -> None:
    """Role and separation of duties: whoever submitted a fix never verifies or rejects it."""
    rule = TRANSITIONS[action]
    if role not in rule.roles:
        raise Forbidden(f"Role {role} may not {action.replace('_', ' ')} a rectification")
    if (
        action in ("verify", "reject")
        and user_id is not None
        and user_id == rectification.get("submitted_by")
    ):
        raise Forbidden("The person who submitted a fix cannot verify or reject it")


def ensure_extension_requestable(
    rectification: dict[str, Any], requested_due_at: datetime, now: datetime
) -> None:
    transition("request_extension", rectification["status"])
    if (rectification.get("extension") or {}).get("status") == "pending":
        raise InvalidTransition("An extension request is already pending")
    if requested_due_at <= rectification["due_at"] or requested_due_at <= now:
        raise ValidationFailed(
            "The requested date must be after the current deadline",
            errors=[
                field_error(["body", "requested_due_at"], "must be later than the current due date and now")
            ],
        )


def ensure_extension_decidable(rectification: dict[str, Any]) -> None:
    transition("decide_extension", rectification["status"])
    if (rectification.get("extension") or {}).get("status") != "pending":
        raise InvalidTransition("There is no pending extension request to decide")


def ensure_submittable(rectification: dict[str, Any]) -> None:
    transition("submit", rectification["status"])
    if not rectification.get("photo_ids"):
        raise ValidationFailed(
            "Upload at least one photo of the fix before submitting",
            errors=[field_error(["photos"], "at least one after photo is required")],
        )


def is_overdue(status: str, due_at: datetime, now: datetime) -> bool:
    """Past the deadline while work remains."""
    return status not in CLOSED and now > due_at


def history_entry(
    action: str,
    at: datetime,
    by: str | None,
    role: str | None,
    from_status: str | None,
    to_status: str,
    **details: Any,
) -> dict[str, Any]:
    """One line of a rectification's history[]."""
    entry: dict[str, Any] = {
        "action": action,
        "at": at,
        "by": by,
        "role": role,
        "from": from_status,
        "to": to_status,
    }
    entry.update({k: v for k, v in details.items() if v is not None})
    return entry
