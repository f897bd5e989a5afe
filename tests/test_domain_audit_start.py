"""Starting an audit without a database: assignment checks, replay detection, the new audit document,
and the history scope of each role."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.audits import AuditStart
from server.domain.access import history_scope
from server.domain.audit_start import check_assignment, new_audit, same_start
from server.errors import Conflict, Forbidden, ValidationFailed
from server.http.authz import Principal

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
BRANCH = {"_id": "b1", "region_id": "r1", "timezone": "Asia/Shanghai", "branch_type": "full",
          "location": {"lat": 31.2397, "lon": 121.4998}, "geofence_m": 150}


def person(role: str = "inspector", **extra: Any) -> Principal:
    fields: dict[str, Any] = {"user_id": "u1", "username": "u", "role": role, "display_name": "U", "region_id": None,
                              "branch_id": None, "home_branch_id": None, "language": "en", "session_id": ""}
    return Principal(**{**fields, **extra})


def assignment(**extra: Any) -> dict[str, Any]:
    return {"_id": "as1", "program_id": "p1", "assignee_id": "u1", "status": "planned", "audit_id": None,
            "branch_id": "b1", "checklist_key": "test-visit", "channel": "in_branch", "covert": True,
            "window_start": NOW - timedelta(hours=1), "window_end": NOW + timedelta(hours=1), **extra}


def start(**extra: Any) -> AuditStart:
    return AuditStart.model_validate({"checklist_key": "test-visit", "started_at": NOW.isoformat(), **extra})


def test_check_assignment_refusals() -> None:
    body = start(assignment_id="as1")
    check_assignment(assignment(), person(), body)
    with pytest.raises(Forbidden):
        check_assignment(assignment(assignee_id="other"), person(), body)
    with pytest.raises(Conflict):
        check_assignment(assignment(status="in_progress"), person(), body)
    with pytest.raises(ValidationFailed):
        check_assignment(assignment(), person(), start(assignment_id="as1", branch_id="b2"))
    with pytest.raises(ValidationFailed):
        check_assignment(assignment(checklist_key="other"), person(), body)


def test_same_start_needs_the_same_caller_and_body() -> None:
    existing = {"auditor_id": "u1", "start_request": {"x": 1}}
    assert same_start(existing, person(), {"x": 1})
    assert not same_start(existing, person(), {"x": 2})
    assert not same_start(existing, person(user_id="u2"), {"x": 1})


def test_new_audit_from_an_assignment_flags_a_far_check_in() -> None:
    body = start(assignment_id="as1", location={"lat": 31.25, "lon": 121.4998})
    doc = new_audit("a1", who=person(), body=body, request_doc=body.model_dump(mode="json"), branch=BRANCH,
                    assignment=assignment(), checklist_channel="phone", checklist_version=3, now=NOW)
    assert doc["channel"] == "in_branch" and doc["covert"] is True and doc["program_id"] == "p1"
    assert doc["checklist_version"] == 3 and doc["status"] == "in_progress" and doc["answers"] == {}
    assert doc["flags"] == ["outside_geofence"] == doc["checkin"]["flags"] and doc["checkin"]["distance_m"] > 1000
    assert doc["finding_counts"] == {"minor": 0, "major": 0, "critical": 0} and doc["answers_rev"] == 0


def test_new_audit_without_assignment_follows_the_role_and_flags_a_future_start() -> None:
    body = start(branch_id="b1", started_at=(NOW + timedelta(hours=1)).isoformat())
    doc = new_audit("a1", who=person("mystery_shopper"), body=body, request_doc=body.model_dump(mode="json"),
                    branch=BRANCH, assignment=None, checklist_channel="in_branch", checklist_version=1, now=NOW)
    assert doc["covert"] is True and doc["assignment_id"] is None
    assert doc["flags"] == ["no_location", "started_in_future"]


def test_history_scope_per_role() -> None:
    assert history_scope(person("compliance")) == {}
    assert history_scope(person("mystery_shopper")) == {"auditor_id": "u1"}
    assert history_scope(person("branch_head", branch_id="b1")) == {"branch_id": "b1", "status": "released"}
    assert history_scope(person("regional_manager", region_id="r1")) == {"region_id": "r1", "status": "released"}
    assert history_scope(person("branch_head")) is None
