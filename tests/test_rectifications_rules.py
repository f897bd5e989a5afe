"""The rectification transition table and who may take each transition (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server.domain import rectification_rules as rules
from server.errors import Forbidden, InvalidTransition, ValidationFailed

NOW = datetime(2026, 11, 2, 1, tzinfo=UTC)
STATES = ("open", "submitted", "verified", "cancelled")
ALLOWED = {
    "submit": {"open": "submitted"},
    "verify": {"submitted": "verified"},
    "reject": {"submitted": "open"},
    "request_extension": {"open": "open"},
    "decide_extension": {"open": "open", "submitted": "submitted"},
    "cancel": {"open": "cancelled", "submitted": "cancelled"},
}


def rect(**fields: Any) -> dict[str, Any]:
    return {"status": "open", "due_at": NOW + timedelta(days=3), "photo_ids": ["p1"], "submitted_by": None,
            "extension": None, **fields}


@pytest.mark.parametrize("action", sorted(ALLOWED))
@pytest.mark.parametrize("state", STATES)
def test_transition_table(action: str, state: str) -> None:
    expected = ALLOWED[action].get(state)
    if expected is None:
        with pytest.raises(InvalidTransition):
            rules.target_status(action, state)
    else:
        assert rules.target_status(action, state) == expected


def test_only_branch_heads_submit_and_never_verify() -> None:
    rules.ensure_actor_may("submit", "branch_head", "u1", rect())
    for role in ("inspector", "compliance", "regional_manager"):
        with pytest.raises(Forbidden):
            rules.ensure_actor_may("submit", role, "u1", rect())
    with pytest.raises(Forbidden):
        rules.ensure_actor_may("verify", "branch_head", "u1", rect(status="submitted"))


def test_the_submitter_can_neither_verify_nor_reject() -> None:
    submitted = rect(status="submitted", submitted_by="u1")
    for action in ("verify", "reject"):
        with pytest.raises(Forbidden):
            rules.ensure_actor_may(action, "compliance", "u1", submitted)
        rules.ensure_actor_may(action, "compliance", "u2", submitted)


def test_submission_needs_an_after_photo() -> None:
    with pytest.raises(ValidationFailed):
        rules.ensure_submittable(rect(photo_ids=[]))
    rules.ensure_submittable(rect())
    with pytest.raises(InvalidTransition):
        rules.ensure_submittable(rect(status="verified"))


def test_extension_rules() -> None:
    later = NOW + timedelta(days=10)
    rules.ensure_extension_requestable(rect(), later, NOW)
    with pytest.raises(ValidationFailed):
        rules.ensure_extension_requestable(rect(), NOW + timedelta(days=1), NOW)  # earlier than the deadline
    pending = rect(extension={"status": "pending", "requested_due_at": later})
    with pytest.raises(InvalidTransition):
        rules.ensure_extension_requestable(pending, later, NOW)
    rules.ensure_extension_decidable(pending)
    with pytest.raises(InvalidTransition):
        rules.ensure_extension_decidable(rect())
    with pytest.raises(Forbidden):
        rules.ensure_actor_may("decide_extension", "branch_head", "u1", pending)


def test_overdue_is_a_flag_of_unfinished_work_past_the_deadline() -> None:
    due = NOW
    assert not rules.is_overdue("open", due, NOW)
    assert rules.is_overdue("open", due, NOW + timedelta(seconds=1))
    assert rules.is_overdue("submitted", due, NOW + timedelta(days=1))
    assert not rules.is_overdue("verified", due, NOW + timedelta(days=1))
    assert not rules.is_overdue("cancelled", due, NOW + timedelta(days=1))
