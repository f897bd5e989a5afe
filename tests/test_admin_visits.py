"""Programs and visits change: PATCH /programs/{id}, POST /programs/{id}/cancel, PATCH /assignments/{id},
POST /assignments/{id}/cancel; the planning rules hold, and a covert visit's shopper stays hidden."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from server.clock import FakeClock
from server.context import Services
from server.domain.assignments import BranchSlotInfo, Person, assignee_problems, window_problems
from tests.audit_factories import create_program, ids_by, publish_checklist, start_body
from tests.conftest import Api, assert_problem
from tests.test_admin_users import event_of, trail_of, user_id

SHANGHAI = BranchSlotInfo("b1", "r1", "Asia/Shanghai")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_window_rules() -> None:
    start, end = at("2026-11-03T10:00:00+08:00"), at("2026-11-03T12:00:00+08:00")
    days = (start.date(), start.date() + timedelta(days=20))
    assert window_problems(SHANGHAI, start, end, *days) == []
    assert [p.field for p in window_problems(SHANGHAI, end, start, *days)] == ["window_end"]
    evening = window_problems(SHANGHAI, at("2026-11-03T16:00:00+08:00"), at("2026-11-03T18:00:00+08:00"), *days)
    assert [p.field for p in evening] == ["window_end"]
    sunday = window_problems(SHANGHAI, at("2026-11-08T10:00:00+08:00"), at("2026-11-08T12:00:00+08:00"), *days)
    assert "closed that day" in sunday[0].message
    late = window_problems(SHANGHAI, start, end, start.date() - timedelta(days=9), start.date() - timedelta(days=1))
    assert "period" in late[0].message


def test_assignee_rules() -> None:
    start, end = at("2026-11-03T10:00:00+08:00"), at("2026-11-03T12:00:00+08:00")
    free = assignee_problems(Person("p"), branch_id="b1", covert=True, previous_visitor="q", booked=[],
                             start=start, end=end)
    assert free == []
    home = assignee_problems(Person("p", "b1"), branch_id="b1", covert=False, previous_visitor=None, booked=[],
                             start=start, end=end)
    assert "home branch" in home[0].message
    again = assignee_problems(Person("p"), branch_id="b1", covert=True, previous_visitor="p", booked=[],
                              start=start, end=end)
    assert "previous visit" in again[0].message
    # Another visit ending 20 minutes before this one starts leaves no time to travel.
    busy = assignee_problems(Person("p"), branch_id="b1", covert=False, previous_visitor=None,
                             booked=[(start - timedelta(hours=2), start - timedelta(minutes=20))], start=start, end=end)
    assert "booked" in busy[0].message


async def _planned(api: Api, services: Services, codes: tuple[str, ...], **fields: Any) -> list[dict[str, Any]]:
    await publish_checklist(services.db)
    branches = await ids_by(services.db, "branches", "code")
    program = await create_program(api, branch_ids=[branches[c]["_id"] for c in codes], **fields)
    visits = await api.json("POST", f"/api/v1/programs/{program['id']}/assignments", "compliance", expect=201)
    return list(visits["items"])


async def _new_user(api: Api, username: str, role: str, **scope: str) -> str:
    password = "pw-" + uuid.uuid4().hex
    created = await api.json("POST", "/api/v1/users", "admin", expect=201, json={
        "username": username, "password": password, "role": role, "display_name": username, **scope})
    await api.login(username, password)
    return str(created["id"])


async def test_patch_assignment_reassigns_and_moves_under_the_planning_rules(
        api: Api, services: Services, clock: FakeClock) -> None:
    first, second = await _planned(api, services, ("SH-LJZ", "SH-JA"))
    if first["branch_id"] != (await ids_by(services.db, "branches", "code"))["SH-LJZ"]["_id"]:
        first, second = second, first
    path = f"/api/v1/assignments/{first['id']}"
    branches = await ids_by(services.db, "branches", "code")
    local = await _new_user(api, "ljz.inspector", "inspector", home_branch_id=branches["SH-LJZ"]["_id"])
    body = await api.json("PATCH", path, "compliance", expect=422, json={"assignee_id": local})
    assert body["errors"][0]["loc"] == ["body", "assignee_id"] and "home branch" in body["errors"][0]["msg"]
    shopper = await user_id(services, api.credentials["mystery_shopper"]["username"])
    body = await api.json("PATCH", path, "compliance", expect=422, json={"assignee_id": shopper})
    assert body["errors"][0]["loc"] == ["body", "assignee_id"]
    # The other visit's person, in the other visit's window: a double booking.
    body = await api.json("PATCH", path, "compliance", expect=422, json={
        "assignee_id": second["assignee_id"], "window_start": second["window_start"],
        "window_end": second["window_end"]})
    assert body["errors"][0]["loc"] == ["body", "assignee_id"] and "booked" in body["errors"][0]["msg"]
    body = await api.json("PATCH", path, "compliance", expect=422, json={
        "window_start": "2026-11-04T20:00:00+08:00", "window_end": "2026-11-04T22:00:00+08:00"})
    assert body["errors"][0]["loc"][:2] == ["body", "window_start"]
    body = await api.json("PATCH", path, "compliance", expect=422, json={"window_start": "2026-11-04T10:00:00+08:00"})
    assert body["errors"][0]["loc"] == ["body"]

    other = await _new_user(api, "east.inspector", "inspector", region_id=branches["SH-LJZ"]["region_id"])
    moved = await api.json("PATCH", path, "compliance", expect=200, json={
        "assignee_id": other, "window_start": "2026-11-04T10:00:00+08:00", "window_end": "2026-11-04T12:00:00+08:00"})
    assert moved["assignee_id"] == other and moved["window_start"].startswith("2026-11-04T02:00:00")
    event = await event_of(services, "assignment.updated", first["id"])
    assert event["payload"]["changed"] == ["assignee", "window"] and other not in str(event)
    entry = await trail_of(services, "assignment.update", first["id"])
    assert entry["summary"]["assignee_id"] == other
    mine = await api.json("GET", "/api/v1/assignments?mine=true", "east.inspector", expect=200)
    assert [a["id"] for a in mine["items"]] == [first["id"]]
    for role in ("branch_head", "regional_manager", "inspector", "mystery_shopper"):
        r = await api.call("PATCH", path, role, json={"assignee_id": other})
        assert_problem(r, await r.json(content_type=None), 403)
    await api.json("PATCH", f"/api/v1/assignments/{uuid.uuid4()}", "compliance", expect=404,
                   json={"assignee_id": other})
    # Once started, a visit stays with its auditor.
    await api.json("PUT", f"/api/v1/audits/{uuid.uuid4()}", "east.inspector", expect=201,
                   json=start_body(first["branch_id"], clock.now(), assignment_id=first["id"]))
    await api.json("PATCH", path, "compliance", expect=409, json={"assignee_id": first["assignee_id"]})


async def test_reassigning_a_covert_visit_never_shows_the_shopper_to_the_branch(
        api: Api, services: Services) -> None:
    (visit,) = await _planned(api, services, ("SH-LJZ",), covert=True)
    others = [await user_id(services, name) for name in ("shopper", "shopper2", "shopper3")]
    new_shopper = next(s for s in others if s != visit["assignee_id"])
    moved = await api.json("PATCH", f"/api/v1/assignments/{visit['id']}", "compliance", expect=200,
                           json={"assignee_id": new_shopper})
    assert moved["assignee_id"] == new_shopper
    shopper_doc = await services.db.users.find_one({"_id": new_shopper})
    assert shopper_doc is not None
    # The visit's minute as a timestamp ("2026-11-05T01:00"): a bare "01:00" also matches the test clock's own
    # times in unrelated fields (created_at), which made this check fail by chance.
    secrets = (new_shopper, shopper_doc["username"], shopper_doc["display_name"], visit["window_start"][:16])
    for path in ("/api/v1/assignments", f"/api/v1/assignments?branch_id={visit['branch_id']}",
                 "/api/v1/notifications", f"/api/v1/branches/{visit['branch_id']}",
                 f"/api/v1/trail?entity_id={visit['id']}"):
        resp = await api.call("GET", path, "branch_head")
        text = await resp.text()
        assert [s for s in secrets if s in text] == [], (path, resp.status)
    # The new shopper is told; nobody at the branch is.
    shopper_name = shopper_doc["username"]
    password = "shopper-" + uuid.uuid4().hex
    await services.db.users.update_one({"_id": new_shopper},
                                       {"$set": {"password_hash": await services.passwords.hash(password)}})
    await api.login(shopper_name, password)
    inbox = await api.json("GET", "/api/v1/notifications", shopper_name, expect=200)
    assert [n["data"]["assignment_id"] for n in inbox["items"] if n["kind"] == "visit.assigned"] == [visit["id"]]
    # Integrations relay events: the event says what changed, not who or when.
    event = await event_of(services, "assignment.updated", visit["id"])
    assert [s for s in secrets if s in str(event)] == []


async def test_cancel_assignment_with_its_event_and_trail_entry(api: Api, services: Services) -> None:
    (visit,) = await _planned(api, services, ("SH-LJZ",))
    path = f"/api/v1/assignments/{visit['id']}/cancel"
    await api.json("POST", path, "compliance", expect=422, json={})
    r = await api.call("POST", path, "branch_head", json={"reason": "x"})
    assert r.status == 403
    cancelled = await api.json("POST", path, "compliance", expect=200, json={"reason": "branch renovation"})
    assert cancelled["status"] == "cancelled"
    event = await event_of(services, "assignment.cancelled", visit["id"])
    assert event["payload"]["reason"] == "branch renovation"
    await trail_of(services, "assignment.cancel", visit["id"])
    await api.json("POST", path, "compliance", expect=409, json={"reason": "again"})


async def test_patch_program_changes_name_and_dates_within_its_planned_visits(
        api: Api, services: Services) -> None:
    await publish_checklist(services.db)
    branches = await ids_by(services.db, "branches", "code")
    program = await create_program(api, branch_ids=[branches["SH-LJZ"]["_id"]])
    path = f"/api/v1/programs/{program['id']}"
    changed = await api.json("PATCH", path, "compliance", expect=200,
                             json={"name": "Q4 inspections", "ends_on": "2026-12-15"})
    assert changed["name"] == "Q4 inspections" and changed["ends_on"] == "2026-12-15"
    event = await event_of(services, "program.updated", program["id"])
    assert event["payload"]["changed"] == ["ends_on", "name"]
    await trail_of(services, "program.update", program["id"])
    body = await api.json("PATCH", path, "compliance", expect=422, json={"ends_on": "2026-10-01"})
    assert body["errors"][0]["loc"] == ["body", "ends_on"]
    (visit,) = (await api.json("POST", f"{path}/assignments", "compliance", expect=201))["items"]
    # The visit's day is drawn at random within the program, so the date that would leave it
    # outside is worked out from the day it got: the start moved past it, or the end before it.
    zone = ZoneInfo(branches["SH-LJZ"].get("timezone") or "UTC")
    day = datetime.fromisoformat(visit["window_start"].replace("Z", "+00:00")).astimezone(zone).date()
    if day < date(2026, 12, 15):
        field, moved = "starts_on", day + timedelta(days=1)
    else:
        field, moved = "ends_on", day - timedelta(days=1)
    body = await api.json("PATCH", path, "compliance", expect=409, json={field: moved.isoformat()})
    assert body["errors"][0]["loc"] == ["body", field], day
    r = await api.call("PATCH", path, "regional_manager", json={"name": "x"})
    assert_problem(r, await r.json(content_type=None), 403)


async def test_cancel_program_cancels_visits_not_started_and_keeps_audits_under_way(
        api: Api, services: Services, clock: FakeClock) -> None:
    await publish_checklist(services.db)
    branches = await ids_by(services.db, "branches", "code")
    program = await create_program(api, branch_ids=[b["_id"] for b in branches.values()])
    visits = (await api.json("POST", f"/api/v1/programs/{program['id']}/assignments", "compliance",
                             expect=201))["items"]
    mine = (await api.json("GET", "/api/v1/assignments?mine=true", "inspector", expect=200))["items"]
    audit_id = str(uuid.uuid4())
    await api.json("PUT", f"/api/v1/audits/{audit_id}", "inspector", expect=201,
                   json=start_body(mine[0]["branch_id"], clock.now(), assignment_id=mine[0]["id"]))
    path = f"/api/v1/programs/{program['id']}/cancel"
    r = await api.call("POST", path, "inspector", json={"reason": "x"})
    assert r.status == 403
    result = await api.json("POST", path, "compliance", expect=200, json={"reason": "budget cut"})
    assert result["cancelled_assignments"] == len(visits) - 1 and result["kept_assignments"] == 1
    assert result["program"]["cancelled_reason"] == "budget cut"
    statuses = {a["_id"]: a["status"] for a in await services.db.assignments.find({}).to_list()}
    assert statuses.pop(mine[0]["id"]) == "in_progress"
    assert set(statuses.values()) == {"cancelled"}
    event = await event_of(services, "program.cancelled", program["id"])
    assert event["payload"]["cancelled_assignments"] == len(visits) - 1
    await trail_of(services, "program.cancel", program["id"])
    assert await services.db.events.count_documents({"type": "assignment.cancelled"}) == len(visits) - 1
    audit = await api.json("GET", f"/api/v1/audits/{audit_id}", "inspector", expect=200)
    assert audit["status"] == "in_progress"
    await api.json("POST", path, "compliance", expect=409, json={"reason": "again"})
    await api.json("PATCH", f"/api/v1/programs/{program['id']}", "compliance", expect=409, json={"name": "x"})


async def test_a_program_over_a_closed_branch_is_refused(api: Api, services: Services) -> None:
    await publish_checklist(services.db)
    branches = await ids_by(services.db, "branches", "code")
    await api.json("POST", f"/api/v1/branches/{branches['SH-JA']['_id']}/close", "admin", expect=200,
                   json={"reason": "closed"})
    body = await api.json("POST", "/api/v1/programs", "compliance", expect=422, json={
        "name": "P", "checklist_key": "test-visit", "starts_on": "2026-11-02", "ends_on": "2026-11-30",
        "branch_ids": [branches["SH-LJZ"]["_id"], branches["SH-JA"]["_id"]]})
    assert body["errors"][0]["loc"] == ["body", "branch_ids", 1]
