"""OWASP API3 (mass assignment): protected fields sent in request bodies are refused with 422 naming the
field (request models forbid extra fields) or ignored, and never stored."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server.clock import FakeClock
from server.context import Services
from tests.audit_factories import ids_by, passing_answers, publish_checklist, start_body
from tests.conftest import Api
from tests.test_access_sweep import LATER, build

NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def _cases(ids: dict[str, str], start: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any], str]]:
    """(who, method, path, valid body, protected field); the field is added with a hostile value."""
    answers = passing_answers(NOW)[:1]
    rect = f"/api/v1/rectifications/{ids['rect_id']}"
    return [
        ("admin", "POST", "/api/v1/users",
         {"username": "mass.user", "password": "p" * 12, "role": "inspector", "display_name": "M"}, "password_hash"),
        ("admin", "POST", "/api/v1/users",
         {"username": "mass.user2", "password": "p" * 12, "role": "inspector", "display_name": "M"}, "active"),
        ("inspector", "PUT", f"/api/v1/audits/{uuid.uuid4()}", start, "status"),
        ("inspector", "PUT", f"/api/v1/audits/{uuid.uuid4()}", start, "auditor_id"),
        ("inspector", "PUT", f"/api/v1/audits/{uuid.uuid4()}", start, "score"),
        ("inspector", "PUT", f"/api/v1/audits/{uuid.uuid4()}", start, "grade"),
        ("inspector", "PUT", f"/api/v1/audits/{uuid.uuid4()}", start, "region_id"),
        ("inspector", "PUT", f"/api/v1/audits/{uuid.uuid4()}", start, "covert"),
        ("inspector", "PUT", f"/api/v1/audits/{uuid.uuid4()}", start, "flags"),
        ("branch_head", "POST", f"/api/v1/findings/{ids['finding_id']}/appeal", {"reason": "r"}, "status"),
        ("branch_head", "POST", f"/api/v1/findings/{ids['finding_id']}/appeal", {"reason": "r"}, "filed_by"),
        ("compliance", "POST", f"/api/v1/appeals/{ids['appeal_id']}/decision",
         {"outcome": "upheld", "comment": "c"}, "decided_by"),
        ("branch_head", "POST", f"{rect}/submit", {"note": "n"}, "status"),
        ("branch_head", "POST", f"{rect}/submit", {"note": "n"}, "verified_by"),
        ("branch_head", "POST", f"{rect}/submit", {"note": "n"}, "due_at"),
        ("branch_head", "POST", f"{rect}/submit", {"note": "n"}, "branch_id"),
        ("compliance", "POST", f"{rect}/verify", {"comment": "c"}, "verified_by"),
        ("branch_head", "POST", f"{rect}/extension", {"requested_due_at": LATER, "reason": "r"}, "status"),
        ("compliance", "POST", "/api/v1/programs",
         {"name": "p", "checklist_key": "test-visit", "branch_ids": [ids["branch_id"]], "starts_on": "2026-11-02",
          "ends_on": "2026-11-30"}, "created_by"),
        ("admin", "POST", "/api/v1/webhooks", {"url": "http://127.0.0.1:9/h", "event_types": ["audit.released"]},
         "created_by"),
        ("inspector", "PATCH", f"/api/v1/audits/{ids['audit_id']}/answers", {"__list__": answers}, "received_at"),
    ]


HOSTILE: dict[str, Any] = {"status": "verified", "score": 100.0, "grade": "A", "active": True, "covert": False,
                           "flags": [], "due_at": LATER}


@pytest.mark.slow
async def test_protected_fields_in_bodies_are_refused_and_not_stored(
        api: Api, services: Services, clock: FakeClock) -> None:
    objects = await build(api, services, clock)
    db = services.db
    counts_before = {c: await db[c].count_documents({}) for c in ("users", "audits", "appeals", "programs",
                                                                   "webhooks")}
    rect_before = await db.rectifications.find_one({"_id": objects.ids["rect_id"]})
    other_user = str(uuid.uuid4())
    failures = []
    start = dict(objects.start, started_at=NOW.isoformat())
    branch = (await ids_by(db, "branches", "code"))["SH-JA"]
    start = start_body(branch["_id"], NOW - timedelta(minutes=5))
    for who, method, path, body, protected in _cases(objects.ids, start):
        value = HOSTILE.get(protected, other_user)
        if "__list__" in body:
            payload: Any = [dict(a, **{protected: value}) for a in body["__list__"]]
        else:
            payload = {**body, protected: value}
        resp = await api.call(method, path, who, json=payload)
        problem = await resp.json(content_type=None)
        locs = [e.get("loc", []) for e in problem.get("errors", [])] if isinstance(problem, dict) else []
        if resp.status != 422 or not any(loc and loc[-1] == protected for loc in locs):
            failures.append(f"{method} {path} with {protected}: {resp.status} {str(problem)[:200]}")
    assert failures == [], "\n".join(failures)
    counts_after = {c: await db[c].count_documents({}) for c in counts_before}
    assert counts_after == counts_before
    assert await db.rectifications.find_one({"_id": objects.ids["rect_id"]}) == rect_before
    assert await db.users.count_documents({"password_hash": other_user}) == 0


async def test_submit_ignores_a_body_claiming_a_score(api: Api, services: Services, clock: FakeClock) -> None:
    """Submit takes no body: a phone cannot choose its own score, grade or critical flag."""
    from tests.audit_factories import add_photo

    await publish_checklist(services.db)
    branch = (await ids_by(services.db, "branches", "code"))["SH-LJZ"]
    audit_id = str(uuid.uuid4())
    await api.json("PUT", f"/api/v1/audits/{audit_id}", "inspector", expect=201,
                   json=start_body(branch["_id"], clock.now(), location={"lat": 31.2397, "lon": 121.4998}))
    await add_photo(services.db, audit_id, "lobby_photo", branch["_id"])
    await add_photo(services.db, audit_id, "hall_clean", branch["_id"])
    await api.json("PATCH", f"/api/v1/audits/{audit_id}/answers", "inspector", expect=200,
                   json=passing_answers(clock.now(), hall_clean=False, atm_working=False))
    resp = await api.call("POST", f"/api/v1/audits/{audit_id}/submit", "inspector",
                          json={"score": 100.0, "grade": "A", "critical_failed": False, "status": "released"})
    assert resp.status in (200, 422), await resp.text()
    stored = await services.db.audits.find_one({"_id": audit_id})
    assert stored is not None
    assert stored["status"] in ("in_progress", "submitted")
    if resp.status == 200:
        assert stored["critical_failed"] is True and stored["grade"] != "A" and stored["score"] != 100.0
