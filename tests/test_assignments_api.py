"""Programs and assignment generation through the API."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

from server.clock import FakeClock
from server.context import Services
from tests.audit_factories import create_program, ids_by, publish_checklist, start_body
from tests.conftest import Api, assert_problem


async def test_generate_assignments_is_idempotent_and_respects_rotation(api: Api, services: Services) -> None:
    await publish_checklist(services.db)
    resp = await api.call("POST", "/api/v1/programs", "inspector", json={})
    assert_problem(resp, await resp.json(), 403)
    regions = await ids_by(services.db, "regions", "code")
    program = await create_program(api, name="Q4 mystery shopping", region_ids=[regions["IBERIA"]["_id"]],
                                   ends_on="2026-12-20", visits_per_branch=2, covert=True)
    first = await api.json("POST", f"/api/v1/programs/{program['id']}/assignments", "compliance", expect=201)
    again = await api.json("POST", f"/api/v1/programs/{program['id']}/assignments", "compliance", expect=200)
    assert [a["id"] for a in again["items"]] == [a["id"] for a in first["items"]]
    assert len(first["items"]) == 6 and await services.db.assignments.count_documents({}) == 6
    shoppers = {u["_id"]: u for u in await services.db.users.find({"role": "mystery_shopper"}).to_list()}
    by_branch: dict[str, list[str]] = {}
    for a in sorted(first["items"], key=lambda a: a["window_start"]):
        assert a["assignee_id"] in shoppers
        assert shoppers[a["assignee_id"]].get("home_branch_id") != a["branch_id"]
        by_branch.setdefault(a["branch_id"], []).append(a["assignee_id"])
    assert all(seq[0] != seq[1] for seq in by_branch.values())
    listed = await api.json("GET", "/api/v1/programs", "compliance", expect=200)
    assert listed["items"][0]["assignments_generated"] is True


async def test_only_the_assignee_starts_an_assignment_and_windows_are_checked(
    api: Api, services: Services, clock: FakeClock
) -> None:
    await publish_checklist(services.db)
    branch = (await ids_by(services.db, "branches", "code"))["SH-LJZ"]
    program = await create_program(api, name="Overt", branch_ids=[branch["_id"]], ends_on="2026-11-06")
    # The only active inspector gets the visit (the other demo inspector is away).
    await services.db.users.update_one({"username": "inspector2"}, {"$set": {"active": False}})
    [assignment] = (await api.json("POST", f"/api/v1/programs/{program['id']}/assignments", "compliance", expect=201))[
        "items"
    ]
    mine = await api.json("GET", "/api/v1/assignments?mine=true", "inspector", expect=200)
    assert [a["id"] for a in mine["items"]] == [assignment["id"]]
    body = start_body(branch["_id"], clock.now() - timedelta(days=3), assignment_id=assignment["id"])
    resp = await api.call("PUT", f"/api/v1/audits/{uuid.uuid4()}", "mystery_shopper", json=body)
    assert_problem(resp, await resp.json(), 403)
    audit_id = str(uuid.uuid4())
    audit = await api.json("PUT", f"/api/v1/audits/{audit_id}", "inspector", expect=201, json=body)
    assert "outside_window" in audit["checkin"]["flags"] and "no_location" in audit["checkin"]["flags"]
    assert audit["program_id"] == program["id"]
    stored = await services.db.assignments.find_one({"_id": assignment["id"]})
    assert stored is not None and stored["status"] == "in_progress" and stored["audit_id"] == audit_id
    resp = await api.call("PUT", f"/api/v1/audits/{uuid.uuid4()}", "inspector", json=body)
    assert_problem(resp, await resp.json(), 409)


async def test_a_second_program_does_not_book_anyone_twice_at_once(api: Api, services: Services) -> None:
    await publish_checklist(services.db)
    branch_ids = [b["_id"] for b in await services.db.branches.find({}).to_list()]
    windows: dict[str, list[tuple[str, str]]] = {}
    for name in ("Dress code", "Counter service"):
        # Both programs in the same three days.
        program = await create_program(api, name=name, branch_ids=branch_ids, ends_on="2026-11-04")
        planned = await api.json("POST", f"/api/v1/programs/{program['id']}/assignments", "compliance", expect=201)
        for a in planned["items"]:
            windows.setdefault(a["assignee_id"], []).append((a["window_start"], a["window_end"]))
    assert sum(len(w) for w in windows.values()) == 2 * len(branch_ids)
    for booked in windows.values():
        ordered = sorted(booked)
        assert all(end < start for (_, end), (start, _) in itertools.pairwise(ordered)), ordered
