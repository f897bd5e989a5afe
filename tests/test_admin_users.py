"""PATCH /users/{id}: people change, leave and move; the CLI's `user create` goes through the same command."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from pymongo import MongoClient

from server.app import bootstrap, create_app
from server.cli import main as cli_main
from server.clock import FakeClock
from server.context import Services
from server.settings import Settings
from tests.audit_factories import create_program, ids_by, publish_checklist, start_body
from tests.conftest import Api, assert_problem


async def user_id(services: Services, username: str) -> str:
    doc = await services.db.users.find_one({"username": username})
    assert doc is not None
    return str(doc["_id"])


async def event_of(services: Services, event_type: str, subject_id: str) -> dict[str, Any]:
    found = await services.db.events.find_one({"type": event_type, "subject.id": subject_id})
    assert found is not None, f"no {event_type} event for {subject_id}"
    return dict(found)


async def trail_of(services: Services, action: str, entity_id: str) -> dict[str, Any]:
    found = await services.db.trail.find_one({"action": action, "entity_id": entity_id})
    assert found is not None, f"no {action} trail entry for {entity_id}"
    return dict(found)


async def me_status(api: Api, token: str) -> int:
    return (await api.call("GET", "/api/v1/me", headers={"Authorization": f"Bearer {token}"})).status


async def test_patch_user_changes_the_fields_sent_with_its_event_and_trail_entry(
        api: Api, services: Services) -> None:
    inspector = await user_id(services, api.credentials["inspector"]["username"])
    token = await api.token("inspector")
    changed = await api.json("PATCH", f"/api/v1/users/{inspector}", "admin", expect=200, json={
        "display_name": "Zhou J.", "email": "zhou@bank.example", "language": "en"})
    assert (changed["display_name"], changed["email"], changed["language"]) == ("Zhou J.", "zhou@bank.example", "en")
    assert changed["role"] == "inspector" and changed["active"] is True
    event = await event_of(services, "user.updated", inspector)
    assert event["payload"]["changed"] == ["display_name", "email", "language"]
    assert event["payload"]["sessions_ended"] is False
    entry = await trail_of(services, "user.update", inspector)
    assert entry["actor_role"] == "admin"
    # A change of name or language keeps the person logged in.
    assert await me_status(api, token) == 200


async def test_patch_user_refuses_bad_input_naming_the_field(api: Api, services: Services) -> None:
    inspector = await user_id(services, api.credentials["inspector"]["username"])
    path = f"/api/v1/users/{inspector}"
    r = await api.call("PATCH", path, "admin", json={"branch_id": str(uuid.uuid4())})
    body = await r.json(content_type=None)
    assert_problem(r, body, 422)
    assert body["errors"][0]["loc"] == ["body", "branch_id"]
    body = await api.json("PATCH", path, "admin", expect=422, json={"role": "branch_head"})
    assert body["errors"][0]["loc"] == ["body", "branch_id"]
    body = await api.json("PATCH", path, "admin", expect=422, json={"password_hash": "x"})
    assert ["body", "password_hash"] in [e["loc"] for e in body["errors"]]
    await api.json("PATCH", path, "admin", expect=422, json={})
    await api.json("PATCH", f"/api/v1/users/{uuid.uuid4()}", "admin", expect=404, json={"display_name": "x"})
    for role in ("compliance", "regional_manager", "branch_head", "inspector"):
        r = await api.call("PATCH", path, role, json={"display_name": "x"})
        assert_problem(r, await r.json(content_type=None), 403)


async def _visits_for_everyone(api: Api, services: Services) -> None:
    await publish_checklist(services.db)
    branches = await ids_by(services.db, "branches", "code")
    program = await create_program(api, branch_ids=[b["_id"] for b in branches.values()])
    await api.json("POST", f"/api/v1/programs/{program['id']}/assignments", "compliance", expect=201)


async def test_deactivation_locks_out_at_once_and_hands_visits_back_to_compliance(
        api: Api, services: Services, clock: FakeClock) -> None:
    await _visits_for_everyone(api, services)
    inspector = await user_id(services, api.credentials["inspector"]["username"])
    db = services.db
    tokens = await api.login("inspector")
    mine = await api.json("GET", "/api/v1/assignments?mine=true&limit=200", "inspector", expect=200)
    assert len(mine["items"]) >= 2
    # One visit under way: its audit stays the inspector's, readable, and nobody else can submit it.
    started = mine["items"][0]
    audit_id = str(uuid.uuid4())
    await api.json("PUT", f"/api/v1/audits/{audit_id}", "inspector", expect=201,
                   json=start_body(started["branch_id"], clock.now(), assignment_id=started["id"]))
    not_started = [a["id"] for a in mine["items"][1:]]

    changed = await api.json("PATCH", f"/api/v1/users/{inspector}", "admin", expect=200, json={"active": False})
    assert changed["active"] is False
    # The very next request with the old token is refused, and so is the refresh token.
    assert await me_status(api, tokens["access_token"]) == 401
    r = await api.call("POST", "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status == 401
    r = await api.call("POST", "/api/v1/auth/login", json=api.credentials["inspector"])
    assert r.status == 401

    waiting = await api.json("GET", "/api/v1/assignments?unassigned=true&limit=200", "compliance", expect=200)
    assert sorted(a["id"] for a in waiting["items"]) == sorted(not_started)
    returned = await db.assignments.find({"_id": {"$in": not_started}}).to_list()
    assert {a["assignee_id"] for a in returned} == {None}
    assert {a["status"] for a in returned} == {"planned"}
    under_way = await db.assignments.find_one({"_id": started["id"]})
    assert under_way is not None and under_way["assignee_id"] == inspector and under_way["status"] == "in_progress"
    deactivated = await event_of(services, "user.deactivated", inspector)
    assert deactivated["payload"]["returned_assignments"] == len(not_started)
    assert await db.events.count_documents({"type": "assignment.returned"}) == len(not_started)
    await trail_of(services, "user.deactivate", inspector)
    inbox = await api.json("GET", "/api/v1/notifications", "compliance", expect=200)
    notice = next(n for n in inbox["items"] if n["kind"] == "admin.assignments_returned")
    assert sorted(notice["data"]["assignment_ids"]) == sorted(not_started)

    audit = await api.json("GET", f"/api/v1/audits/{audit_id}", "compliance", expect=200)
    assert audit["status"] == "in_progress"
    other = "inspector.east2"
    password = "another-inspector-" + uuid.uuid4().hex[:6]
    await api.json("POST", "/api/v1/users", "admin", expect=201, json={
        "username": other, "password": password, "role": "inspector", "display_name": "Other"})
    await api.login(other, password)
    r = await api.call("POST", f"/api/v1/audits/{audit_id}/submit", other)
    assert r.status == 404
    # Compliance gives a returned visit to someone else.
    replacement = await user_id(services, other)
    moved = await api.json("PATCH", f"/api/v1/assignments/{not_started[0]}", "compliance", expect=200,
                           json={"assignee_id": replacement})
    assert moved["assignee_id"] == replacement


@pytest.fixture
async def second_instance(settings: Settings, mongo_uri: str, clock: FakeClock,
                          api: Api) -> AsyncIterator[Api]:
    """Another server process's worth of application on the same database."""
    services = bootstrap(settings, mongo_uri, clock=clock)
    app = create_app(services, start_jobs=False, prepare_data=False, close_client=False)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with ClientSession() as session:
        yield Api(session, str(server.make_url("")).rstrip("/"), api.credentials)
    await server.close()
    await services.client.close()


async def test_a_deactivated_users_token_is_refused_by_every_instance(
        api: Api, second_instance: Api, services: Services) -> None:
    on_first = await api.login("inspector")
    on_second = await second_instance.login("inspector")
    assert await me_status(second_instance, on_first["access_token"]) == 200
    inspector = await user_id(services, api.credentials["inspector"]["username"])
    await second_instance.json("PATCH", f"/api/v1/users/{inspector}", "admin", expect=200, json={"active": False})
    for instance in (api, second_instance):
        for tokens in (on_first, on_second):
            assert await me_status(instance, tokens["access_token"]) == 401


async def test_a_role_or_scope_change_ends_sessions_and_a_head_takes_their_branch_along(
        api: Api, services: Services) -> None:
    db = services.db
    branches = await ids_by(db, "branches", "code")
    head = await user_id(services, api.credentials["branch_head"]["username"])
    assert branches["SH-LJZ"]["head_user_id"] == head
    token = (await api.login("branch_head"))["access_token"]
    hz = branches["HZ-XH"]["_id"]
    moved = await api.json("PATCH", f"/api/v1/users/{head}", "admin", expect=200, json={"branch_id": hz})
    assert moved["branch_id"] == hz and moved["region_id"] == branches["HZ-XH"]["region_id"]
    assert await me_status(api, token) == 401
    after = await ids_by(db, "branches", "code")
    assert after["SH-LJZ"]["head_user_id"] is None
    assert after["HZ-XH"]["head_user_id"] == head
    event = await event_of(services, "user.updated", head)
    assert event["payload"]["changed"] == ["branch_id"] and event["payload"]["sessions_ended"] is True
    # Logged in again, the head sees the new branch only.
    await api.login("branch_head")
    mine = await api.json("GET", "/api/v1/branches", "branch_head", expect=200)
    assert [b["id"] for b in mine["items"]] == [hz]
    # No longer a head: the branch has none.
    await api.json("PATCH", f"/api/v1/users/{head}", "admin", expect=200, json={"role": "compliance"})
    assert (await db.branches.find_one({"_id": hz}))["head_user_id"] is None  # type: ignore[index]


async def test_the_last_active_admin_can_be_neither_deactivated_nor_demoted(api: Api, services: Services) -> None:
    admin = await user_id(services, api.credentials["admin"]["username"])
    body = await api.json("PATCH", f"/api/v1/users/{admin}", "admin", expect=409, json={"active": False})
    assert body["errors"][0]["loc"] == ["body", "active"]
    body = await api.json("PATCH", f"/api/v1/users/{admin}", "admin", expect=409, json={"role": "compliance"})
    assert body["errors"][0]["loc"] == ["body", "role"]
    # With a second admin, the first may go.
    password = "second-admin-" + uuid.uuid4().hex[:8]
    await api.json("POST", "/api/v1/users", "admin", expect=201, json={
        "username": "admin2", "password": password, "role": "admin", "display_name": "Second"})
    await api.json("PATCH", f"/api/v1/users/{admin}", "admin", expect=200, json={"active": False})
    await api.login("admin2", password)
    second = await user_id(services, "admin2")
    await api.json("PATCH", f"/api/v1/users/{second}", "admin2", expect=409, json={"active": False})


# --- the command line ------------------------------------------------------------------------------


def test_cli_user_create_sets_the_branch_head_emits_the_event_and_refuses_unknown_codes(
        mongo_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    name = f"t_{uuid.uuid4().hex[:16]}"
    for key, value in {"MONGODB_URI": mongo_uri, "DATABASE_NAME": name, "VAR_DIR": str(tmp_path),
                       "JWT_SECRET": "cli-" + uuid.uuid4().hex, "ARGON2_TIME_COST": "1",
                       "ARGON2_MEMORY_KIB": "1024", "BRANCH_AUDIT_PASSWORD": "a-long-password-1"}.items():
        monkeypatch.setenv(key, value)
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    db = client[name]
    try:
        db.regions.insert_one({"_id": "r1", "code": "EAST", "name": "East", "created_at": None})
        db.branches.insert_one({"_id": "b1", "code": "SZ-FT", "name": "Futian", "region_id": "r1",
                                "location": {"lat": 22.5, "lon": 114.0}, "geofence_m": 150,
                                "timezone": "Asia/Shanghai", "head_user_id": None, "created_at": None})
        assert cli_main(["user", "create", "sz.head", "--role", "branch_head", "--branch-code", "SZ-FT"]) == 0
        head = db.users.find_one({"username": "sz.head"})
        assert head is not None and head["region_id"] == "r1" and head["home_branch_id"] == "b1"
        assert db.branches.find_one({"_id": "b1"})["head_user_id"] == head["_id"]  # type: ignore[index]
        assert db.events.find_one({"type": "user.created", "subject.id": head["_id"]}) is not None
        assert db.trail.find_one({"action": "user.create", "entity_id": head["_id"]}) is not None

        capsys.readouterr()
        assert cli_main(["user", "create", "ghost.head", "--role", "branch_head", "--branch-code", "NOPE"]) == 2
        assert "NOPE" in capsys.readouterr().err
        assert db.users.find_one({"username": "ghost.head"}) is None
    finally:
        client.drop_database(name)
        client.close()



async def test_admins_search_users_and_filter_the_inactive(api: Api, services: Services) -> None:
    found = await api.json("GET", "/api/v1/users?q=GRANVIA", "admin", expect=200)
    assert [u["username"] for u in found["items"]] == ["mad.head"]
    found = await api.json("GET", "/api/v1/users?q=demo.branch-audit&role=mystery_shopper", "admin", expect=200)
    assert {u["username"] for u in found["items"]} == {"shopper", "shopper2", "shopper3"}
    shopper = await user_id(services, "shopper3")
    await api.json("PATCH", f"/api/v1/users/{shopper}", "admin", expect=200, json={"active": False})
    inactive = await api.json("GET", "/api/v1/users?active=false", "admin", expect=200)
    assert [u["username"] for u in inactive["items"]] == ["shopper3"]
    active = await api.json("GET", "/api/v1/users?active=true&limit=200", "admin", expect=200)
    assert "shopper3" not in {u["username"] for u in active["items"]} and len(active["items"]) >= 15
    await api.json("GET", "/api/v1/users?q=.*", "admin", expect=200)


async def test_admins_see_a_users_open_sessions(api: Api, services: Services) -> None:
    inspector = await user_id(services, api.credentials["inspector"]["username"])
    await api.login("inspector")
    await second_login(api)
    path = f"/api/v1/users/{inspector}/sessions"
    sessions = await api.json("GET", path, "admin", expect=200)
    assert len(sessions["items"]) == 2 and sessions["items"][0]["client_address"] == "127.0.0.1"
    await api.json("PATCH", f"/api/v1/users/{inspector}", "admin", expect=200, json={"role": "mystery_shopper"})
    assert (await api.json("GET", path, "admin", expect=200))["items"] == []
    r = await api.call("GET", path, "compliance")
    assert_problem(r, await r.json(content_type=None), 403)
    await api.json("GET", f"/api/v1/users/{uuid.uuid4()}/sessions", "admin", expect=404)


async def second_login(api: Api) -> None:
    r = await api.call("POST", "/api/v1/auth/login", json=api.credentials["inspector"])
    assert r.status == 200


async def test_a_new_users_password_follows_the_password_rules(api: Api) -> None:
    for weak in ("Summer2026!", "new.inspector-2026", "short"):
        body = await api.json("POST", "/api/v1/users", "admin", expect=422, json={
            "username": "new.inspector", "password": weak, "role": "inspector", "display_name": "New"})
        assert ["body", "password"] in [e["loc"] for e in body["errors"]], weak
