"""`make run` seeds a demo with work in it: visits for the field roles and released history for the others."""

from __future__ import annotations

import json
from datetime import timedelta

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from server.app import create_app
from server.checklists.publishing import publish_shipped
from server.commands.generate import generate_history
from server.context import Services
from server.demo import BRANCHES, EXTRA_USERS, REGIONS, USERS, seed_demo, seed_demo_if_empty
from server.domain.rectification_rules import ACTIVE, CLOSED
from tests.conftest import Api, reconfigure

WORKFLOW_STATES = (*ACTIVE, *CLOSED)


async def test_first_start_seeds_visits_and_history(services: Services) -> None:
    reconfigure(services, publish_checklists=True)
    await publish_shipped(services)
    assert await seed_demo_if_empty(services)
    assert not await seed_demo_if_empty(services)  # once per database
    credentials = json.loads((services.settings.var_dir / "demo-credentials.json").read_text())
    app = create_app(services, start_jobs=False, prepare_data=False, close_client=False)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with ClientSession() as session:
            api = Api(session, str(server.make_url("")).rstrip("/"), credentials)
            mine = await api.json("GET", "/api/v1/assignments?mine=true&limit=50", "inspector", expect=200)
            assert mine["items"] and {a["checklist_key"] for a in mine["items"]} == {"branch-service"}
            covert = await api.json("GET", "/api/v1/assignments?mine=true&limit=50", "mystery_shopper", expect=200)
            assert covert["items"] and all(a["covert"] for a in covert["items"])
            released = await api.json("GET", "/api/v1/audits?limit=5", "branch_head", expect=200)
            assert released["items"] and all(r["status"] == "released" for r in released["items"])
            card = await api.json("GET", "/api/v1/reports/scorecard?group_by=branch", "compliance", expect=200)
            assert card["items"]
    finally:
        await server.close()


async def test_generated_history_is_what_the_workflow_produces(api: Api, services: Services) -> None:
    """Regression: the generator wrote rectifications in a `rejected` state and without a time zone, so
    compliance rejecting a demo fix that waited for verification got a 500."""
    await generate_history(services, count=80, months=1, seed=3)
    stored = await services.db.rectifications.find({}).to_list()
    assert stored and {r["status"] for r in stored} <= set(WORKFLOW_STATES)
    assert all(r["timezone"] and r["history"] and r["inspector_id"] for r in stored)
    waiting = [r for r in stored if r["status"] == "submitted"]
    assert waiting, "the seed gives fixes waiting for verification"
    rejected = await api.json("POST", f"/api/v1/rectifications/{waiting[0]['_id']}/reject", "compliance",
                              expect=200, json={"comment": "the poster is still torn"})
    assert rejected["status"] == "open" and rejected["history"][-1]["action"] == "rejected"
    verified = await api.json("POST", f"/api/v1/rectifications/{waiting[-1]['_id']}/verify", "compliance",
                              expect=200, json={"comment": "fine"}) if len(waiting) > 1 else None
    assert verified is None or verified["status"] == "verified"
    # Every fix handed in shows its after photo: stored like an upload, the branch's local time in its EXIF.
    handed_in = [r for r in stored if any(h["action"] == "submitted" for h in r["history"])]
    assert handed_in and all(r["photo_ids"] or r["status"] == "open" for r in handed_in)  # rejected: new ones
    listed = {p: r for r in handed_in for h in r["history"] if h["action"] == "submitted" for p in h["photo_ids"]}
    photos = {p["_id"]: p for p in await services.db.photos.find({"_id": {"$in": list(listed)}}).to_list()}
    assert set(photos) == set(listed) >= {p for r in handed_in for p in r["photo_ids"]}
    for photo_id, rect in listed.items():
        photo = photos[photo_id]
        handed = next(h["at"] for h in rect["history"] if h["action"] == "submitted")
        assert photo["rectification_id"] == rect["_id"] and photo["branch_id"] == rect["branch_id"]
        assert photo["uploaded_at"] == handed and abs(photo["captured_at"] - handed) < timedelta(seconds=1)
        assert photo["captured_at_source"] == "exif_offset" and "no_exif" not in photo["flags"]
    head = await services.db.users.find_one({"username": api.credentials["branch_head"]["username"]})
    own = next(r for r in handed_in if head and r["assignee_id"] == head["_id"] and r["photo_ids"])
    for role in ("branch_head", "compliance"):
        resp = await api.call("GET", f"/api/v1/photos/{own['photo_ids'][0]}", role)
        assert resp.status == 200 and resp.content_type == "image/jpeg", role
        assert (await resp.read()).startswith(b"\xff\xd8")
    findings = await services.db.findings.find({}, {"checklist_version": 1, "auditor_id": 1}).to_list()
    assert all(f["checklist_version"] and f["auditor_id"] for f in findings)
    # Audits too: answered, scored item by item, and readable like any other.
    audit = await services.db.audits.find_one({"status": "released", "finding_counts.major": {"$gt": 0}})
    assert audit is not None and audit["answers"] and audit["result"]["breakdown"]
    assert audit["start_request"]["checklist_key"] == audit["checklist_key"]
    seen = await api.json("GET", f"/api/v1/audits/{audit['_id']}", "compliance", expect=200)
    assert seen["score"] == audit["score"] and len(seen["findings"]) >= 1


async def test_the_demo_organisation_is_made_by_the_admin_commands(services: Services) -> None:
    """No second writer: the operator creates the first admin, who creates the regions, branches and people
    through the same commands as the admin API, each with its event and trail entry."""
    credentials = await seed_demo(services)
    people = USERS + EXTRA_USERS
    events = await services.db.events.find({}, {"type": 1, "actor": 1}).to_list()
    counts = {kind: sum(e["type"] == kind for e in events) for kind in {e["type"] for e in events}}
    assert counts == {"region.created": len(REGIONS), "branch.created": len(BRANCHES), "user.created": len(people),
                      "region.updated": 2}
    admin = await services.db.users.find_one({"username": credentials["admin"]["username"]})
    assert admin is not None
    by_operator = [e for e in events if e["actor"]["kind"] == "system"]
    assert len(by_operator) == 1 and by_operator[0]["type"] == "user.created"
    assert all(e["actor"]["id"] == admin["_id"] for e in events if e not in by_operator)
    trail = await services.db.trail.find({}, {"action": 1}).to_list()
    assert sorted(e["action"] for e in trail) == sorted(
        ["region.create"] * len(REGIONS) + ["branch.create"] * len(BRANCHES) + ["user.create"] * len(people)
        + ["region.update"] * 2)
    # What the commands do beyond inserting: every branch gets its head, every region its manager.
    branches = await services.db.branches.find({}).to_list()
    heads = {u["_id"] for u in await services.db.users.find({"role": "branch_head"}).to_list()}
    assert len(branches) == len(BRANCHES) and {b["head_user_id"] for b in branches} == heads
    regions = await services.db.regions.find({}).to_list()
    assert all(r["manager_user_id"] for r in regions)
