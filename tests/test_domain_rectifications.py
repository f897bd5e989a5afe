"""The rectification document and the workflow's changes to it, without a database: the constructor the
handler and the history generator share, and each change applied in memory."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from schemas.checklist import Checklist
from server.domain import rectification_rules as rules
from server.domain import rectifications as workflow
from server.domain.rectifications import Actor
from server.domain.reminders import ReminderPolicy
from server.errors import InvalidTransition, ValidationFailed
from tests.audit_factories import checklist_definition

RELEASED = datetime(2026, 11, 2, 2, tzinfo=UTC)
POLICY = ReminderPolicy.from_text()
EOD = time(18)
HEAD = Actor("head-1", rules.BRANCH_HEAD)
INSPECTOR = Actor("insp-1", rules.INSPECTOR)
BRANCH = {"_id": "b1", "region_id": "r1", "name": "Lujiazui", "timezone": "Asia/Shanghai", "head_user_id": "head-1"}
AUDIT = {"_id": "a1", "auditor_id": "insp-1", "auditor_role": "inspector", "checklist_key": "test-visit",
         "checklist_version": 1, "program_id": None}


def finding(**fields: Any) -> dict[str, Any]:
    return {"_id": "f1", "audit_id": "a1", "branch_id": "b1", "region_id": "r1", "item_id": "hall_clean",
            "section_id": "environment", "severity": "major", "critical": False, "photo_ids": ["p0"],
            "fixed_on_spot": False, **fields}


def opened(**fields: Any) -> dict[str, Any]:
    checklist = Checklist.model_validate(checklist_definition())
    return workflow.new_rectification(finding=finding(**fields), audit=AUDIT, branch=BRANCH, checklist=checklist,
                                      released_at=RELEASED, now=RELEASED, policy=POLICY, eod=EOD)


def test_a_new_rectification_is_open_in_the_branchs_time_zone_with_its_item_text() -> None:
    rect = opened()
    assert rect["status"] == rules.OPEN and rect["timezone"] == "Asia/Shanghai"
    assert rect["assignee_id"] == "head-1" and rect["inspector_id"] == "insp-1"
    assert rect["item_text"]["en"] == "hall clean" and rect["due_at"] > RELEASED
    assert rect["next_reminder_at"] is not None and rect["history"][0]["to"] == rules.OPEN


def test_fixed_on_the_spot_is_verified_at_once_with_the_inspectors_photos() -> None:
    rect = opened(fixed_on_spot=True)
    assert rect["status"] == rules.VERIFIED and rect["photo_ids"] == ["p0"] and "next_reminder_at" not in rect


def test_submit_needs_an_after_photo_then_pauses_reminders() -> None:
    rect = opened()
    with pytest.raises(ValidationFailed):
        workflow.submitted(rect, HEAD, "done", RELEASED)
    rect["photo_ids"] = ["after"]
    after = workflow.submitted(rect, HEAD, "done", RELEASED + timedelta(hours=1)).applied_to(rect)
    assert after["status"] == rules.SUBMITTED and "next_reminder_at" not in after
    assert after["submitted_by"] == "head-1" and after["history"][-1]["photo_ids"] == ["after"]


def test_reject_goes_back_to_open_with_a_new_deadline_and_reminders() -> None:
    rect = {**opened(), "photo_ids": ["after"]}
    rect = workflow.submitted(rect, HEAD, "done", RELEASED).applied_to(rect)
    at = RELEASED + timedelta(days=1)
    new_due = workflow.rejection_deadline(rect, None, at, EOD)
    after = workflow.rejected(rect, INSPECTOR, "not yet", new_due, POLICY, at).applied_to(rect)
    assert after["status"] == rules.OPEN and after["due_at"] == new_due > at
    assert after["history"][-1]["action"] == "rejected" and after["next_reminder_at"] is not None
    assert rules.REJECTED not in {after["status"]}  # "rejected" is an action, never a stored state


def test_changes_refuse_the_states_they_do_not_start_from() -> None:
    rect = opened()
    with pytest.raises(InvalidTransition):
        workflow.verified(rect, INSPECTOR, "ok", RELEASED)
    cancelled = workflow.cancelled(rect, workflow.SYSTEM, "overturned", RELEASED).applied_to(rect)
    assert cancelled["status"] == rules.CANCELLED
    with pytest.raises(InvalidTransition):
        workflow.cancelled(cancelled, workflow.SYSTEM, "again", RELEASED)


def test_an_approved_extension_moves_the_deadline_and_restarts_reminders() -> None:
    rect = opened()
    later = rect["due_at"] + timedelta(days=5)
    asked = workflow.extension_requested(rect, HEAD, later, "parts on order", RELEASED).applied_to(rect)
    assert asked["extension"]["status"] == "pending" and asked["status"] == rules.OPEN
    decided = workflow.extension_decided(asked, Actor("c1", rules.COMPLIANCE), True, "ok", POLICY, RELEASED)
    after = decided.applied_to(asked)
    assert after["due_at"] == later and after["extension"]["status"] == "approved"
    refused = workflow.extension_decided(asked, Actor("c1", rules.COMPLIANCE), False, "no", POLICY, RELEASED)
    assert "due_at" not in refused.set_fields
