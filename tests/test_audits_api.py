"""Audits through the HTTP API: offline-safe start and answers, submission, review transitions."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from server.clock import FakeClock
from server.context import Services
from tests.audit_factories import (
    add_photo,
    checklist_definition,
    ids_by,
    passing_answers,
    publish_checklist,
    start_body,
)
from tests.conftest import Api, assert_problem


async def prepare(services: Services) -> dict[str, Any]:
    await publish_checklist(services.db)
    branches = await ids_by(services.db, "branches", "code")
    return {"branch": branches["SH-LJZ"], "branches": branches}


async def started(
    api: Api, services: Services, clock: FakeClock, who: str = "inspector", **kw: Any
) -> tuple[str, dict[str, Any]]:
    ctx = await prepare(services)
    branch = ctx["branch"]
    audit_id = str(uuid.uuid4())
    body = start_body(branch["_id"], clock.now(), location=kw.pop("location", {"lat": 31.2397, "lon": 121.4998}))
    audit = await api.json("PUT", f"/api/v1/audits/{audit_id}", who, expect=201, json=body)
    return audit_id, {"branch": branch, "audit": audit, "body": body}


async def complete(
    api: Api,
    services: Services,
    clock: FakeClock,
    audit_id: str,
    branch_id: str,
    who: str = "inspector",
    **overrides: Any,
) -> dict[str, Any]:
    await add_photo(services.db, audit_id, "lobby_photo", branch_id)
    result: dict[str, Any] = await api.json(
        "PATCH", f"/api/v1/audits/{audit_id}/answers", who, expect=200, json=passing_answers(clock.now(), **overrides)
    )
    return result


async def test_put_audit_replayed_start_is_200_and_different_body_409(
    api: Api, services: Services, clock: FakeClock
) -> None:
    audit_id, ctx = await started(api, services, clock)
    assert ctx["audit"]["status"] == "in_progress" and ctx["audit"]["checklist_version"] == 1
    again = await api.json("PUT", f"/api/v1/audits/{audit_id}", "inspector", expect=200, json=ctx["body"])
    assert again["id"] == audit_id and again["started_at"] == ctx["audit"]["started_at"]
    changed = {**ctx["body"], "started_at": (clock.now() + timedelta(minutes=1)).isoformat()}
    resp = await api.call("PUT", f"/api/v1/audits/{audit_id}", "inspector", json=changed)
    assert_problem(resp, await resp.json(), 409)
    assert await services.db.audits.count_documents({}) == 1
    assert await services.db.events.count_documents({"type": "audit.started"}) == 1
    assert await services.db.trail.count_documents({"action": "audit.start"}) == 1


async def test_put_audit_refuses_non_uuid_and_branch_roles(api: Api, services: Services, clock: FakeClock) -> None:
    ctx = await prepare(services)
    body = start_body(ctx["branch"]["_id"], clock.now())
    resp = await api.call("PUT", "/api/v1/audits/not-a-uuid", "inspector", json=body)
    assert_problem(resp, await resp.json(), 422)
    resp = await api.call("PUT", f"/api/v1/audits/{uuid.uuid4()}", "branch_head", json=body)
    assert_problem(resp, await resp.json(), 403)
    home = start_body(ctx["branches"]["HZ-XH"]["_id"], clock.now())  # the demo inspector's home branch
    resp = await api.call("PUT", f"/api/v1/audits/{uuid.uuid4()}", "inspector", json=home)
    assert_problem(resp, await resp.json(), 403)


async def test_checkin_outside_geofence_is_accepted_but_flagged(api: Api, services: Services, clock: FakeClock) -> None:
    audit_id, ctx = await started(api, services, clock, location={"lat": 31.2500, "lon": 121.4998})
    assert ctx["audit"]["checkin"]["flags"] == ["outside_geofence"]
    assert ctx["audit"]["checkin"]["distance_m"] > 1000
    stored = await services.db.audits.find_one({"_id": audit_id})
    assert stored is not None and stored["flags"] == ["outside_geofence"]
    _inside_id, inside = await started(api, services, clock)
    assert inside["audit"]["checkin"]["flags"] == [] and inside["audit"]["checkin"]["distance_m"] < 150


async def test_answers_later_answered_at_wins_whatever_the_arrival_order(
    api: Api, services: Services, clock: FakeClock
) -> None:
    audit_id, _ = await started(api, services, clock)
    t0 = clock.now()
    newer = [
        {
            "item_id": "hall_clean",
            "value": False,
            "answered_at": (t0 + timedelta(minutes=5)).isoformat(),
            "note": "dusty",
        }
    ]
    older = [{"item_id": "hall_clean", "value": True, "answered_at": t0.isoformat()}]
    first = await api.json("PATCH", f"/api/v1/audits/{audit_id}/answers", "inspector", expect=200, json=newer)
    assert first["applied"] == 1
    late = await api.json("PATCH", f"/api/v1/audits/{audit_id}/answers", "inspector", expect=200, json=older)
    assert late["applied"] == 0
    stored = await services.db.audits.find_one({"_id": audit_id})
    assert stored is not None
    assert stored["answers"]["hall_clean"]["value"] is False and stored["answers"]["hall_clean"]["note"] == "dusty"
    # within one batch too: the later one wins even when it comes first
    mixed = [*newer, *older]
    mixed[0] = {**newer[0], "item_id": "greeted", "value": True}
    mixed[1] = {**older[0], "item_id": "greeted", "value": False}
    await api.json("PATCH", f"/api/v1/audits/{audit_id}/answers", "inspector", expect=200, json=mixed)
    stored = await services.db.audits.find_one({"_id": audit_id})
    assert stored is not None and stored["answers"]["greeted"]["value"] is True


async def test_replayed_batch_changes_nothing_and_progress_resumes(
    api: Api, services: Services, clock: FakeClock
) -> None:
    audit_id, _ctx = await started(api, services, clock)
    batch = passing_answers(clock.now())[:4]
    first = await api.json("PATCH", f"/api/v1/audits/{audit_id}/answers", "inspector", expect=200, json=batch)
    before = await services.db.audits.find_one({"_id": audit_id})
    clock.advance(timedelta(minutes=3))
    replay = await api.json("PATCH", f"/api/v1/audits/{audit_id}/answers", "inspector", expect=200, json=batch)
    after = await services.db.audits.find_one({"_id": audit_id})
    assert replay["applied"] == 0 and before == after
    assert await services.db.trail.count_documents({"action": "audit.answer"}) == 1
    progress = replay["progress"]
    assert progress == first["progress"]
    assert progress["required"] == 10  # comments optional, complaint_followup hidden
    assert progress["answered"] == 3  # lobby_photo counts once its photo is there
    assert progress["missing_items"] == [
        "greeted",
        "wait_minutes",
        "time_to_greet",
        "greeting_words",
        "farewell",
        "badge_worn",
    ]
    assert progress["missing_photos"] == ["lobby_photo"]


async def test_answers_are_validated_against_the_pinned_checklist(
    api: Api, services: Services, clock: FakeClock
) -> None:
    audit_id, _ = await started(api, services, clock)
    at = clock.now().isoformat()
    bad = [
        {"item_id": "hall_clean", "value": True, "answered_at": at},
        {"item_id": "no_such_item", "value": True, "answered_at": at},
        {"item_id": "signage", "value": 9, "answered_at": at},
        {"item_id": "greeted", "value": None, "na": True, "answered_at": at},
        {"item_id": "greeting_words", "value": "shouting", "answered_at": at},
        {"item_id": "farewell", "value": "smile", "answered_at": at},
        {"item_id": "wait_minutes", "value": "ten", "answered_at": at},
    ]
    resp = await api.call("PATCH", f"/api/v1/audits/{audit_id}/answers", "inspector", json=bad)
    body = await resp.json()
    assert_problem(resp, body, 422)
    assert [e["loc"] for e in body["errors"]] == [
        ["body", 1, "item_id"],
        ["body", 2, "value"],
        ["body", 3, "na"],
        ["body", 4, "value"],
        ["body", 5, "value"],
        ["body", 6, "value"],
    ]
    stored = await services.db.audits.find_one({"_id": audit_id})
    assert stored is not None and stored["answers"] == {}
    resp = await api.call(
        "PATCH", f"/api/v1/audits/{audit_id}/answers", "inspector", json=[{"item_id": "hall_clean", "value": True}]
    )
    assert_problem(resp, await resp.json(), 422)


async def test_submit_lists_every_missing_item_then_scores_and_twice_is_same(
    api: Api, services: Services, clock: FakeClock
) -> None:
    audit_id, ctx = await started(api, services, clock)
    branch_id = ctx["branch"]["_id"]
    await api.json(
        "PATCH",
        f"/api/v1/audits/{audit_id}/answers",
        "inspector",
        expect=200,
        json=passing_answers(clock.now(), hall_clean=False)[:2],
    )
    resp = await api.call("POST", f"/api/v1/audits/{audit_id}/submit", "inspector")
    body = await resp.json()
    assert_problem(resp, body, 422)
    locs = [e["loc"] for e in body["errors"]]
    assert ["answers", "atm_working"] in locs and ["photos", "lobby_photo"] in locs
    assert ["photos", "hall_clean"] in locs  # required_on_fail
    assert all(loc[-1] != "comments" and loc[-1] != "complaint_followup" for loc in locs)

    photo = await add_photo(services.db, audit_id, "hall_clean", branch_id)
    clock.advance(timedelta(minutes=1))  # the rating below replaces the earlier answer
    await complete(api, services, clock, audit_id, branch_id, hall_clean=False, atm_working=False, signage=3)
    result = await api.json("POST", f"/api/v1/audits/{audit_id}/submit", "inspector", expect=200)
    assert result["status"] == "submitted" and result["critical_failed"] is True and result["grade"] == "F"
    assert result["score"] == round((0.5 + 12) / 16 * 100, 2)
    assert [s["id"] for s in result["sections"]] == ["environment", "service"]
    assert sorted(f["item_id"] for f in result["findings"]) == ["atm_working", "hall_clean", "signage"]
    again = await api.json("POST", f"/api/v1/audits/{audit_id}/submit", "inspector", expect=200)
    assert again == result
    findings = await services.db.findings.find({"audit_id": audit_id}).to_list()
    assert len(findings) == 3
    hall = next(f for f in findings if f["item_id"] == "hall_clean")
    assert hall["severity"] == "major" and hall["photo_ids"] == [photo] and hall["status"] == "open"
    atm = next(f for f in findings if f["item_id"] == "atm_working")
    assert atm["severity"] == "critical" and atm["critical"] is True
    types = [e["type"] for e in await services.db.events.find({"subject_ids.audit_id": audit_id}).to_list()]
    assert types.count("audit.submitted") == 1 and types.count("finding.created") == 3
    audit = await services.db.audits.find_one({"_id": audit_id})
    assert audit is not None and audit["finding_counts"] == {"minor": 1, "major": 1, "critical": 1}
    assert audit["result"]["rules_version"] == 1 and len(audit["result"]["breakdown"]) == 12


async def test_fixed_on_spot_is_inspector_only_and_lands_on_the_finding(
    api: Api, services: Services, clock: FakeClock
) -> None:
    audit_id, ctx = await started(api, services, clock)
    answers = passing_answers(clock.now(), badge_worn=False)
    for answer in answers:
        if answer["item_id"] == "badge_worn":
            answer["fixed_on_spot"] = True
    await add_photo(services.db, audit_id, "lobby_photo", ctx["branch"]["_id"])
    await api.json("PATCH", f"/api/v1/audits/{audit_id}/answers", "inspector", expect=200, json=answers)
    await api.json("POST", f"/api/v1/audits/{audit_id}/submit", "inspector", expect=200)
    finding = await services.db.findings.find_one({"audit_id": audit_id, "item_id": "badge_worn"})
    assert finding is not None and finding["fixed_on_spot"] is True
    event = await services.db.events.find_one({"type": "finding.created", "payload.finding_id": finding["_id"]})
    assert event is not None and event["payload"]["fixed_on_spot"] is True

    shopper_audit = str(uuid.uuid4())
    await api.json(
        "PUT",
        f"/api/v1/audits/{shopper_audit}",
        "mystery_shopper",
        expect=201,
        json=start_body(ctx["branch"]["_id"], clock.now()),
    )
    resp = await api.call("PATCH", f"/api/v1/audits/{shopper_audit}/answers", "mystery_shopper", json=answers)
    body = await resp.json()
    assert_problem(resp, body, 422)
    assert body["errors"][0]["loc"][-1] == "fixed_on_spot"


async def test_review_transitions_and_their_refusals(api: Api, services: Services, clock: FakeClock) -> None:
    audit_id, ctx = await started(api, services, clock)
    path = f"/api/v1/audits/{audit_id}"
    for action, kw in (("release", {}), ("return", {"json": {"comment": "x"}})):
        resp = await api.call("POST", f"{path}/{action}", "compliance", **kw)
        assert_problem(resp, await resp.json(), 409)
    await complete(api, services, clock, audit_id, ctx["branch"]["_id"], greeted=False, complaint_followup=False)
    first = await api.json("POST", f"{path}/submit", "inspector", expect=200)
    assert sorted(f["item_id"] for f in first["findings"]) == ["complaint_followup", "greeted"]
    resp = await api.call("PATCH", f"{path}/answers", "inspector", json=passing_answers(clock.now())[:1])
    assert_problem(resp, await resp.json(), 409)
    resp = await api.call("POST", f"{path}/return", "inspector", json={"comment": "x"})
    assert_problem(resp, await resp.json(), 403)

    returned = await api.json(
        "POST", f"{path}/return", "compliance", expect=200, json={"comment": "Photo of the lobby is blurred"}
    )
    assert returned["status"] == "returned"
    assert await services.db.findings.count_documents({"audit_id": audit_id}) == 0
    withdrawn = await services.db.events.find({"type": "finding.withdrawn", "subject_ids.audit_id": audit_id}).to_list()
    assert sorted(e["subject"]["id"] for e in withdrawn) == sorted(f["id"] for f in first["findings"])
    mine = await api.json("GET", path, "inspector", expect=200)
    assert mine["returned_comment"] == "Photo of the lobby is blurred" and mine["status"] == "returned"
    resp = await api.call("POST", f"{path}/return", "compliance", json={"comment": "again"})
    assert_problem(resp, await resp.json(), 409)

    clock.advance(timedelta(minutes=10))
    fixed = await api.json("PATCH", f"{path}/answers", "inspector", expect=200, json=passing_answers(clock.now())[4:5])
    assert fixed["status"] == "in_progress" and fixed["applied"] == 1
    second = await api.json("POST", f"{path}/submit", "inspector", expect=200)
    assert second["score"] == 100.0 and second["findings"] == []
    released = await api.json("POST", f"{path}/release", "compliance", expect=200)
    assert released["status"] == "released"
    for action, kw in (("release", {}), ("return", {"json": {"comment": "x"}})):
        resp = await api.call("POST", f"{path}/{action}", "compliance", **kw)
        body = await resp.json()
        assert_problem(resp, body, 409)
        assert body["type"].endswith("invalid-transition")
    events = [
        e["type"]
        for e in await services.db.events.find({"subject_ids.audit_id": audit_id}).sort("occurred_at", 1).to_list()
    ]
    for expected in ("audit.started", "audit.submitted", "audit.returned", "audit.released"):
        assert expected in events
    actions = {t["action"] for t in await services.db.trail.find({"entity_id": audit_id}).to_list()}
    assert {"audit.start", "audit.answer", "audit.submit", "audit.return", "audit.release"} <= actions


async def test_release_sets_released_at_and_names_open_findings(api: Api, services: Services, clock: FakeClock) -> None:
    audit_id, ctx = await started(api, services, clock)
    await complete(api, services, clock, audit_id, ctx["branch"]["_id"], wait_minutes=25)
    result = await api.json("POST", f"/api/v1/audits/{audit_id}/submit", "inspector", expect=200)
    clock.advance(timedelta(hours=5))
    await api.json("POST", f"/api/v1/audits/{audit_id}/release", "compliance", expect=200)
    event = await services.db.events.find_one({"type": "audit.released", "subject.id": audit_id})
    assert event is not None
    assert event["payload"]["finding_ids"] == [f["id"] for f in result["findings"]]
    assert event["payload"]["checklist_version"] == 1 and event["payload"]["region_id"] == ctx["branch"]["region_id"]
    finding = await services.db.findings.find_one({"audit_id": audit_id})
    assert finding is not None and finding["released_at"] == clock.now()
    audit = await services.db.audits.find_one({"_id": audit_id})
    assert audit is not None and audit["released_at"] == clock.now() and audit["status"] == "released"


async def test_audit_stays_on_v1_after_v2_is_published(api: Api, services: Services, clock: FakeClock) -> None:
    audit_id, ctx = await started(api, services, clock)
    definition = checklist_definition()
    definition["sections"][0]["items"].append(
        {"id": "new_item", "type": "yes_no", "text": {"zh-CN": "n", "en": "n", "es": "n"}}
    )
    assert await publish_checklist(services.db, definition) == 2
    resp = await api.call(
        "PATCH",
        f"/api/v1/audits/{audit_id}/answers",
        "inspector",
        json=[{"item_id": "new_item", "value": True, "answered_at": clock.now().isoformat()}],
    )
    assert_problem(resp, await resp.json(), 422)
    result = await complete(api, services, clock, audit_id, ctx["branch"]["_id"])
    assert result["progress"]["complete"] is True
    submitted = await api.json("POST", f"/api/v1/audits/{audit_id}/submit", "inspector", expect=200)
    assert submitted["score"] == 100.0
    detail = await api.json("GET", f"/api/v1/audits/{audit_id}", "compliance", expect=200)
    assert detail["checklist_version"] == 1 and detail["checklist"]["version"] == 1
    assert detail["checklist"]["content_hash"]
    newer_id = str(uuid.uuid4())
    newer = await api.json(
        "PUT", f"/api/v1/audits/{newer_id}", "inspector", expect=201, json=start_body(ctx["branch"]["_id"], clock.now())
    )
    assert newer["checklist_version"] == 2
