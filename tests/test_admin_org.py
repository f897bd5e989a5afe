"""PATCH /regions/{id}, PATCH /branches/{id} and POST /branches/{id}/close: the organisation changes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from server.clock import FakeClock
from server.context import Services
from server.domain.branches import same_local_time
from tests.audit_factories import create_program, ids_by, publish_checklist, start_body
from tests.conftest import Api, assert_problem
from tests.test_admin_users import event_of, me_status, trail_of, user_id


def test_same_local_time_keeps_the_wall_clock() -> None:
    due = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # 18:00 in Shanghai
    moved = same_local_time(due, "Asia/Shanghai", "Europe/Madrid")
    assert moved == datetime(2026, 11, 20, 17, 0, tzinfo=UTC)  # 18:00 in Madrid (UTC+1 in November)
    # Across a daylight-saving change the offset of the day itself counts.
    summer = same_local_time(datetime(2026, 7, 1, 10, 0, tzinfo=UTC), "Asia/Shanghai", "Europe/Madrid")
    assert summer == datetime(2026, 7, 1, 16, 0, tzinfo=UTC)


async def branch_by_code(services: Services, code: str) -> dict[str, Any]:
    return dict((await ids_by(services.db, "branches", "code"))[code])


async def test_patch_branch_changes_details_with_event_and_trail_and_refuses_bad_input(
        api: Api, services: Services) -> None:
    branch = await branch_by_code(services, "SH-LJZ")
    path = f"/api/v1/branches/{branch['_id']}"
    changed = await api.json("PATCH", path, "admin", expect=200, json={
        "name": "Lujiazui Flagship", "address": "1 Century Ave", "geofence_m": 300,
        "opening_hours": {"open": "10:00", "close": "18:00", "weekdays": [0, 1, 2, 3, 4]}})
    assert changed["name"] == "Lujiazui Flagship" and changed["geofence_m"] == 300
    assert changed["opening_hours"]["open"] == "10:00"
    event = await event_of(services, "branch.updated", branch["_id"])
    assert event["payload"]["changed"] == ["address", "geofence_m", "name", "opening_hours"]
    await trail_of(services, "branch.update", branch["_id"])
    body = await api.json("PATCH", path, "admin", expect=422, json={"timezone": "Mars/Olympus"})
    assert body["errors"][0]["loc"] == ["body", "timezone"]
    body = await api.json("PATCH", path, "admin", expect=422, json={"region_id": str(uuid.uuid4())})
    assert body["errors"][0]["loc"] == ["body", "region_id"]
    compliance = await user_id(services, api.credentials["compliance"]["username"])
    body = await api.json("PATCH", path, "admin", expect=422, json={"head_user_id": compliance})
    assert body["errors"][0]["loc"] == ["body", "head_user_id"]
    body = await api.json("PATCH", path, "admin", expect=422, json={"name": None})
    await api.json("PATCH", f"/api/v1/branches/{uuid.uuid4()}", "admin", expect=404, json={"name": "x"})
    for role in ("compliance", "regional_manager", "branch_head"):
        r = await api.call("PATCH", path, role, json={"name": "x"})
        assert_problem(r, await r.json(content_type=None), 403)


async def test_a_time_zone_change_moves_open_work_to_the_same_local_time(
        api: Api, services: Services, clock: FakeClock) -> None:
    db = services.db
    await publish_checklist(db)
    branch = await branch_by_code(services, "SH-LJZ")
    program = await create_program(api, branch_ids=[branch["_id"]], visits_per_branch=2)
    await api.json("POST", f"/api/v1/programs/{program['id']}/assignments", "compliance", expect=201)
    visits = await db.assignments.find({"branch_id": branch["_id"]}).sort("_id", 1).to_list()
    due = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # 18:00 in Shanghai
    rect_id, done_id = str(uuid.uuid4()), str(uuid.uuid4())
    for rid, status in ((rect_id, "open"), (done_id, "verified")):
        await db.rectifications.insert_one({
            "_id": rid, "finding_id": rid, "branch_id": branch["_id"], "region_id": branch["region_id"],
            "status": status, "due_at": due, "next_reminder_at": due - timedelta(hours=24),
            "timezone": "Asia/Shanghai"})

    await api.json("PATCH", f"/api/v1/branches/{branch['_id']}", "admin", expect=200,
                   json={"timezone": "Asia/Tokyo"})
    moved = await db.rectifications.find_one({"_id": rect_id})
    assert moved is not None and moved["timezone"] == "Asia/Tokyo"
    assert moved["due_at"].replace(tzinfo=UTC) == due - timedelta(hours=1)  # 18:00 in Tokyo
    assert moved["next_reminder_at"].replace(tzinfo=UTC) == due - timedelta(hours=25)
    done = await db.rectifications.find_one({"_id": done_id})
    assert done is not None and done["due_at"].replace(tzinfo=UTC) == due  # finished work keeps its history
    for before in visits:
        after = await db.assignments.find_one({"_id": before["_id"]})
        assert after is not None
        assert after["window_start"] == before["window_start"] - timedelta(hours=1)
        assert after["window_end"] == before["window_end"] - timedelta(hours=1)
    event = await event_of(services, "branch.updated", branch["_id"])
    assert event["payload"]["previous_timezone"] == "Asia/Shanghai"
    assert event["payload"]["moved_due_dates"] == 1 + len(visits)


async def test_a_geofence_change_applies_to_later_visits_only(
        api: Api, services: Services, clock: FakeClock) -> None:
    await publish_checklist(services.db)
    branch = await branch_by_code(services, "SH-LJZ")
    near = {"lat": 31.2397 + 0.004, "lon": 121.4998}  # about 450 m north of the branch
    first = str(uuid.uuid4())
    audit = await api.json("PUT", f"/api/v1/audits/{first}", "inspector", expect=201,
                           json=start_body(branch["_id"], clock.now(), location=near))
    assert "outside_geofence" in audit["flags"]
    await api.json("PATCH", f"/api/v1/branches/{branch['_id']}", "admin", expect=200, json={"geofence_m": 1000})
    again = await api.json("GET", f"/api/v1/audits/{first}", "inspector", expect=200)
    assert "outside_geofence" in again["flags"]
    later = await api.json("PUT", f"/api/v1/audits/{uuid.uuid4()}", "inspector", expect=201,
                           json=start_body(branch["_id"], clock.now(), location=near))
    assert "outside_geofence" not in later["flags"]


async def test_a_new_head_moves_to_the_branch(api: Api, services: Services) -> None:
    db = services.db
    ljz = await branch_by_code(services, "SH-LJZ")
    ja = await branch_by_code(services, "SH-JA")
    ja_head = await user_id(services, "ja.head")
    old_head = ljz["head_user_id"]
    password = "ja-head-" + uuid.uuid4().hex[:8]
    await db.users.update_one({"_id": ja_head}, {"$set": {"password_hash": await services.passwords.hash(password)}})
    token = (await api.login("ja.head", password))["access_token"]
    changed = await api.json("PATCH", f"/api/v1/branches/{ljz['_id']}", "admin", expect=200,
                             json={"head_user_id": ja_head})
    assert changed["head_user_id"] == ja_head
    head = await db.users.find_one({"_id": ja_head})
    assert head is not None and head["branch_id"] == ljz["_id"]
    assert (await branch_by_code(services, "SH-JA"))["head_user_id"] is None
    assert await me_status(api, token) == 401
    moved = await event_of(services, "user.updated", ja_head)
    assert moved["payload"]["sessions_ended"] is True
    assert old_head != ja_head and ja["_id"] != ljz["_id"]


async def test_patch_region_renames_and_checks_the_manager(api: Api, services: Services) -> None:
    regions = await ids_by(services.db, "regions", "code")
    east = regions["EAST"]
    path = f"/api/v1/regions/{east['_id']}"
    renamed = await api.json("PATCH", path, "admin", expect=200, json={"name": "East China (Shanghai)"})
    assert renamed["name"] == "East China (Shanghai)"
    await event_of(services, "region.updated", east["_id"])
    await trail_of(services, "region.update", east["_id"])
    iberian = await user_id(services, "iberia.manager")
    body = await api.json("PATCH", path, "admin", expect=422, json={"manager_user_id": iberian})
    assert body["errors"][0]["loc"] == ["body", "manager_user_id"]
    body = await api.json("PATCH", path, "admin", expect=409, json={"code": "IBERIA"})
    assert body["errors"][0]["loc"] == ["body", "code"]
    r = await api.call("PATCH", path, "regional_manager", json={"name": "x"})
    assert r.status == 403


async def test_closing_a_branch_lists_its_open_work_and_plans_no_new_visits(
        api: Api, services: Services, clock: FakeClock) -> None:
    db = services.db
    await publish_checklist(db)
    branch = await branch_by_code(services, "SH-LJZ")
    regions = await ids_by(db, "regions", "code")
    first = await create_program(api, branch_ids=[branch["_id"]])
    planned = await api.json("POST", f"/api/v1/programs/{first['id']}/assignments", "compliance", expect=201)
    closed = await api.json("POST", f"/api/v1/branches/{branch['_id']}/close", "admin", expect=200,
                            json={"reason": "merged into SH-JA"})
    assert closed["branch"]["closed_reason"] == "merged into SH-JA" and closed["branch"]["closed_at"]
    assert [a["id"] for a in closed["open_work"]["assignments"]] == [a["id"] for a in planned["items"]]
    event = await event_of(services, "branch.closed", branch["_id"])
    assert event["payload"]["open_assignments"] == 1
    await trail_of(services, "branch.close", branch["_id"])
    await api.json("POST", f"/api/v1/branches/{branch['_id']}/close", "admin", expect=409, json={"reason": "again"})
    await api.json("POST", f"/api/v1/branches/{branch['_id']}/close", "admin", expect=422, json={})
    # History stays: the branch is still there, and its planned visit too.
    await api.json("GET", f"/api/v1/branches/{branch['_id']}", "admin", expect=200)
    assert await db.assignments.count_documents({"branch_id": branch["_id"]}) == 1
    # A program over its region plans no visit there.
    second = await create_program(api, region_ids=[regions["EAST"]["_id"]], name="East")
    visits = await api.json("POST", f"/api/v1/programs/{second['id']}/assignments", "compliance", expect=201)
    assert visits["items"] and branch["_id"] not in {v["branch_id"] for v in visits["items"]}
    r = await api.call("POST", f"/api/v1/branches/{branch['_id']}/close", "compliance", json={"reason": "x"})
    assert r.status == 403


async def test_creating_regions_branches_and_users_emits_events_and_trail_entries(
        api: Api, services: Services) -> None:
    region = await api.json("POST", "/api/v1/regions", "admin", expect=201, json={"code": "SOUTH", "name": "South"})
    branch = await api.json("POST", "/api/v1/branches", "admin", expect=201, json={
        "code": "SZ-FT", "name": "Shenzhen Futian", "region_id": region["id"],
        "location": {"lat": 22.5431, "lon": 114.0579}, "timezone": "Asia/Shanghai"})
    user = await api.json("POST", "/api/v1/users", "admin", expect=201, json={
        "username": "sz.head", "password": "a-long-password-1", "role": "branch_head", "display_name": "SZ",
        "branch_id": branch["id"]})
    assert user["region_id"] == region["id"]
    for event_type, action, subject in (("region.created", "region.create", region["id"]),
                                        ("branch.created", "branch.create", branch["id"]),
                                        ("user.created", "user.create", user["id"])):
        await event_of(services, event_type, subject)
        await trail_of(services, action, subject)
    body = await api.json("POST", "/api/v1/regions", "admin", expect=409, json={"code": "SOUTH", "name": "Again"})
    assert body["errors"][0]["loc"] == ["body", "code"]
    body = await api.json("POST", "/api/v1/users", "admin", expect=409, json={
        "username": "sz.head", "password": "a-long-password-1", "role": "inspector", "display_name": "x"})
    assert body["errors"][0]["loc"] == ["body", "username"]
