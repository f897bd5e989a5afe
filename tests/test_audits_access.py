"""Covert secrecy and visibility: branch roles see released audits of their scope only, never the shopper."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

from aiohttp import FormData

from server.clock import FakeClock
from server.context import Services
from server.jobs.dispatcher import drain
from tests.audit_factories import create_program, ids_by, passing_answers, publish_checklist, start_body
from tests.conftest import Api, assert_problem
from tests.image_factory import phone_jpeg


async def covert_audit(api: Api, services: Services, clock: FakeClock) -> tuple[str, dict[str, object]]:
    await publish_checklist(services.db)
    branch = (await ids_by(services.db, "branches", "code"))["SH-LJZ"]
    audit_id = str(uuid.uuid4())
    await api.json(
        "PUT",
        f"/api/v1/audits/{audit_id}",
        "mystery_shopper",
        expect=201,
        json=start_body(branch["_id"], clock.now(), location={"lat": 31.2397, "lon": 121.4998}),
    )
    form = FormData()
    form.add_field("item_id", "lobby_photo")
    # 00:55 UTC, shortly before the clock: a real phone photo, with capture time, GPS and device.
    taken = datetime(2026, 11, 2, 8, 55)
    form.add_field("file", phone_jpeg(taken=taken), filename="lobby.jpg", content_type="image/jpeg")
    await api.json("POST", f"/api/v1/audits/{audit_id}/photos", "mystery_shopper", expect=201, data=form)
    await api.json(
        "PATCH",
        f"/api/v1/audits/{audit_id}/answers",
        "mystery_shopper",
        expect=200,
        json=passing_answers(clock.now(), greeted=False, complaint_followup=False),
    )
    await api.json("POST", f"/api/v1/audits/{audit_id}/submit", "mystery_shopper", expect=200)
    return audit_id, branch


async def test_branch_head_cannot_list_or_fetch_unreleased_covert_audit(
    api: Api, services: Services, clock: FakeClock
) -> None:
    audit_id, _ = await covert_audit(api, services, clock)
    for who in ("branch_head", "regional_manager"):
        resp = await api.call("GET", f"/api/v1/audits/{audit_id}", who)
        assert_problem(resp, await resp.json(), 404)
        listing = await api.json("GET", "/api/v1/audits", who, expect=200)
        assert listing["items"] == []
        findings = await api.json("GET", f"/api/v1/findings?audit_id={audit_id}", who, expect=200)
        assert findings["items"] == []
    other = await api.call("GET", f"/api/v1/audits/{audit_id}", "inspector")
    assert_problem(other, await other.json(), 404)  # another auditor's audit


async def test_released_covert_audit_shows_a_pseudonym_and_the_date_only(
    api: Api, services: Services, clock: FakeClock
) -> None:
    audit_id, _ = await covert_audit(api, services, clock)
    clock.advance(timedelta(days=2, hours=3))  # release time is public; the visit's time is not
    await api.json("POST", f"/api/v1/audits/{audit_id}/release", "compliance", expect=200)
    shopper = await services.db.users.find_one({"role": "mystery_shopper", "username": "shopper"})
    assert shopper is not None
    secrets = [shopper["_id"], shopper["display_name"], "Sofia", "T01:00", "T00:5", "Apple", "iPhone"]
    seen = []
    for who in ("branch_head", "regional_manager"):
        detail = await api.json("GET", f"/api/v1/audits/{audit_id}", who, expect=200)
        listing = await api.json("GET", "/api/v1/audits", who, expect=200)
        findings = await api.json("GET", f"/api/v1/findings?audit_id={audit_id}", who, expect=200)
        photos = await api.json("GET", f"/api/v1/audits/{audit_id}/photos", who, expect=200)
        assert len(photos["items"]) == 1
        meta = await api.json("GET", photos["items"][0]["url"] + "/meta", who, expect=200)
        assert meta["uploader_id"] is None and meta["captured_at"] is None and meta["gps"] is None
        assert [row["id"] for row in listing["items"]] == [audit_id]
        assert len(findings["items"]) == 2
        assert detail["auditor"]["pseudonym"].startswith("Shopper-")
        assert detail["visit_date"] == "2026-11-02"
        assert "started_at" not in detail and "checkin" not in detail and "flags" not in detail
        assert all("answered_at" not in a for a in detail["answers"].values())
        text = json.dumps([detail, listing, findings, photos, meta])
        for secret in secrets:
            assert secret not in text, (who, secret)
        seen.append(detail["auditor"]["pseudonym"])
    assert seen[0] == seen[1]  # stable
    full = await api.json("GET", f"/api/v1/audits/{audit_id}", "compliance", expect=200)
    assert full["auditor"]["id"] == shopper["_id"]
    assert {t["action"] for t in full["trail"]} >= {"audit.start", "audit.submit", "audit.release"}


async def test_other_branch_head_sees_nothing(api: Api, services: Services, clock: FakeClock) -> None:
    audit_id, branch = await covert_audit(api, services, clock)
    await api.json("POST", f"/api/v1/audits/{audit_id}/release", "compliance", expect=200)
    head = await services.db.users.find_one({"role": "branch_head", "branch_id": {"$ne": branch["_id"]}})
    assert head is not None
    # Point the demo branch head at another branch: same role, other scope.
    await services.db.users.update_one({"username": "ljz.head"}, {"$set": {"branch_id": head["branch_id"]}})
    resp = await api.call("GET", f"/api/v1/audits/{audit_id}", "branch_head")
    assert_problem(resp, await resp.json(), 404)
    listing = await api.json("GET", f"/api/v1/audits?branch_id={branch['_id']}", "branch_head", expect=200)
    assert listing["items"] == []


async def test_covert_assignments_are_invisible_to_branch_roles(api: Api, services: Services) -> None:
    await publish_checklist(services.db)
    branch = (await ids_by(services.db, "branches", "code"))["SH-LJZ"]
    for covert in (True, False):
        program = await create_program(api, name=f"covert={covert}", branch_ids=[branch["_id"]],
                                       visits_per_branch=2, covert=covert)
        await api.json("POST", f"/api/v1/programs/{program['id']}/assignments", "compliance", expect=201)
    seen = await api.json("GET", "/api/v1/assignments", "branch_head", expect=200)
    assert len(seen["items"]) == 2
    assert all(not a["covert"] and a["assignee_id"] is None for a in seen["items"])
    everything = await api.json("GET", "/api/v1/assignments", "compliance", expect=200)
    assert len(everything["items"]) == 4 and all(a["assignee_id"] for a in everything["items"])
    mine = await api.json("GET", "/api/v1/assignments?mine=true", "mystery_shopper", expect=200)
    shopper = await services.db.users.find_one({"username": "shopper"})
    assert shopper is not None
    assert all(a["covert"] and a["assignee_id"] == shopper["_id"] for a in mine["items"])


async def test_no_read_open_to_branch_roles_names_the_shopper_or_the_minute_of_the_visit(
    api: Api, services: Services, clock: FakeClock
) -> None:
    audit_id, branch = await covert_audit(api, services, clock)
    clock.advance(timedelta(days=1, hours=5))
    await api.json("POST", f"/api/v1/audits/{audit_id}/release", "compliance", expect=200)
    await drain(services)  # rectifications and notifications, as the running server makes them
    findings = await api.json("GET", f"/api/v1/findings?audit_id={audit_id}", "branch_head", expect=200)
    finding_id = findings["items"][0]["id"]
    await api.json("POST", f"/api/v1/findings/{finding_id}/appeal", "branch_head", expect=201,
                   json={"reason": "The greeter was on the phone with a customer"})
    await drain(services)
    shopper = await services.db.users.find_one({"role": "mystery_shopper", "username": "shopper"})
    assert shopper is not None
    secrets = [shopper["_id"], f"\"{shopper['username']}\"", shopper["display_name"], "T00:5", "T01:0"]
    rects = await api.json("GET", "/api/v1/rectifications", "branch_head", expect=200)
    assert rects["items"], "the release made rectifications"
    photos = await api.json("GET", f"/api/v1/audits/{audit_id}/photos", "branch_head", expect=200)
    paths = [
        "/api/v1/audits",
        f"/api/v1/audits/{audit_id}",
        f"/api/v1/audits/{audit_id}/photos",
        *(p["url"] + "/meta" for p in photos["items"]),
        f"/api/v1/findings?audit_id={audit_id}",
        "/api/v1/appeals",
        "/api/v1/rectifications",
        *(f"/api/v1/rectifications/{r['id']}" for r in rects["items"]),
        "/api/v1/notifications",
        "/api/v1/assignments",
        "/api/v1/exports/audits.csv",
        "/api/v1/exports/findings.csv",
        f"/api/v1/reports/scorecard?group_by=section&branch_id={branch['_id']}",
        f"/api/v1/reports/trend?branch_id={branch['_id']}",
        "/api/v1/reports/repeat-findings",
        "/api/v1/reports/rectifications",
    ]
    for who in ("branch_head", "regional_manager"):
        for path in paths:
            resp = await api.call("GET", path, who)
            assert resp.status == 200, (who, path, resp.status)
            text = await resp.text()
            for secret in secrets:
                assert secret not in text, (who, path, secret)
        refused = await api.call("GET", f"/api/v1/users/{shopper['_id']}", who)
        assert refused.status in (403, 404)
