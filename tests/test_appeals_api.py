"""Appeals: filed by the branch head within the window, decided by compliance, overturn re-scores."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from aiohttp import FormData

from server.clock import FakeClock
from server.context import ActorInfo, Services, UnitOfWork
from server.handlers import rectifications as rect_handler
from tests import image_factory
from tests.audit_factories import add_photo, ids_by, passing_answers, publish_checklist, start_body
from tests.conftest import Api, assert_problem


async def released_audit(api: Api, services: Services, clock: FakeClock) -> dict[str, Any]:
    await publish_checklist(services.db)
    branch = (await ids_by(services.db, "branches", "code"))["SH-LJZ"]
    audit_id = str(uuid.uuid4())
    await api.json(
        "PUT", f"/api/v1/audits/{audit_id}", "inspector", expect=201, json=start_body(branch["_id"], clock.now())
    )
    await add_photo(services.db, audit_id, "lobby_photo", branch["_id"])
    await add_photo(services.db, audit_id, "hall_clean", branch["_id"])
    await api.json(
        "PATCH",
        f"/api/v1/audits/{audit_id}/answers",
        "inspector",
        expect=200,
        json=passing_answers(clock.now(), hall_clean=False, atm_working=False),
    )
    submitted = await api.json("POST", f"/api/v1/audits/{audit_id}/submit", "inspector", expect=200)
    await api.json("POST", f"/api/v1/audits/{audit_id}/release", "compliance", expect=200)
    findings = {f["item_id"]: f["id"] for f in submitted["findings"]}
    return {"audit_id": audit_id, "findings": findings, "submitted": submitted}


async def test_overturned_appeal_rescores_the_audit(api: Api, services: Services, clock: FakeClock) -> None:
    ctx = await released_audit(api, services, clock)
    assert ctx["submitted"]["grade"] == "F"
    finding_id = ctx["findings"]["atm_working"]
    appeal = await api.json(
        "POST",
        f"/api/v1/findings/{finding_id}/appeal",
        "branch_head",
        expect=201,
        json={"reason": "The ATM was being refilled by the cash carrier"},
    )
    assert appeal["status"] == "pending"
    resp = await api.call("POST", f"/api/v1/findings/{finding_id}/appeal", "branch_head", json={"reason": "again"})
    assert_problem(resp, await resp.json(), 409)
    pending = await api.json("GET", "/api/v1/appeals?status=pending", "compliance", expect=200)
    assert [a["id"] for a in pending["items"]] == [appeal["id"]]

    decided = await api.json(
        "POST",
        f"/api/v1/appeals/{appeal['id']}/decision",
        "compliance",
        expect=200,
        json={"outcome": "overturned", "comment": "Carrier log confirms"},
    )
    assert decided["status"] == "overturned"
    resp = await api.call(
        "POST", f"/api/v1/appeals/{appeal['id']}/decision", "compliance", json={"outcome": "upheld", "comment": "x"}
    )
    assert_problem(resp, await resp.json(), 409)
    audit = await services.db.audits.find_one({"_id": ctx["audit_id"]})
    assert audit is not None
    assert audit["critical_failed"] is False and audit["grade"] == "B" and audit["score"] == 87.5
    assert audit["finding_counts"] == {"minor": 0, "major": 1, "critical": 0}
    finding = await services.db.findings.find_one({"_id": finding_id})
    assert finding is not None and finding["status"] == "overturned" and finding["pending_appeal_id"] is None
    rescored = await services.db.events.find_one({"type": "audit.rescored"})
    assert rescored is not None
    assert rescored["payload"]["old_grade"] == "F" and rescored["payload"]["new_grade"] == "B"
    assert rescored["payload"]["new_score"] == 87.5
    types = {e["type"] for e in await services.db.events.find({"subject.type": "appeal"}).to_list()}
    assert types == {"appeal.filed", "appeal.decided"}
    actions = {t["action"] for t in await services.db.trail.find({"entity_type": "appeal"}).to_list()}
    assert actions == {"appeal.file", "appeal.decide"}
    resp = await api.call("POST", f"/api/v1/findings/{finding_id}/appeal", "branch_head", json={"reason": "x"})
    assert_problem(resp, await resp.json(), 409)  # no longer open


async def test_upheld_appeal_changes_no_score(api: Api, services: Services, clock: FakeClock) -> None:
    ctx = await released_audit(api, services, clock)
    finding_id = ctx["findings"]["hall_clean"]
    appeal = await api.json(
        "POST",
        f"/api/v1/findings/{finding_id}/appeal",
        "branch_head",
        expect=201,
        json={"reason": "It had just rained"},
    )
    await api.json(
        "POST",
        f"/api/v1/appeals/{appeal['id']}/decision",
        "compliance",
        expect=200,
        json={"outcome": "upheld", "comment": "Still dirty"},
    )
    audit = await services.db.audits.find_one({"_id": ctx["audit_id"]})
    assert audit is not None and audit["score"] == ctx["submitted"]["score"] and audit["grade"] == "F"
    assert await services.db.events.count_documents({"type": "audit.rescored"}) == 0


async def test_idempotency_key_replays_the_same_appeal(api: Api, services: Services, clock: FakeClock) -> None:
    ctx = await released_audit(api, services, clock)
    path = f"/api/v1/findings/{ctx['findings']['hall_clean']}/appeal"
    headers = {"Idempotency-Key": "k-1"}
    first = await api.json("POST", path, "branch_head", expect=201, json={"reason": "r"}, headers=headers)
    again = await api.json("POST", path, "branch_head", expect=200, json={"reason": "r"}, headers=headers)
    assert again["id"] == first["id"]
    assert await services.db.appeals.count_documents({}) == 1


async def test_appeal_window_and_who_may_appeal(api: Api, services: Services, clock: FakeClock) -> None:
    ctx = await released_audit(api, services, clock)
    path = f"/api/v1/findings/{ctx['findings']['hall_clean']}/appeal"
    for who, status in (("inspector", 403), ("compliance", 403), ("regional_manager", 403)):
        resp = await api.call("POST", path, who, json={"reason": "r"})
        assert_problem(resp, await resp.json(), status)
    clock.advance(timedelta(days=services.settings.appeal_window_days, seconds=1))
    resp = await api.call("POST", path, "branch_head", json={"reason": "late"})
    assert_problem(resp, await resp.json(), 409)
    resp = await api.call("POST", f"/api/v1/findings/{uuid.uuid4()}/appeal", "branch_head", json={"reason": "r"})
    assert_problem(resp, await resp.json(), 404)


async def test_appeal_refused_before_release(api: Api, services: Services, clock: FakeClock) -> None:
    await publish_checklist(services.db)
    branch = (await ids_by(services.db, "branches", "code"))["SH-LJZ"]
    audit_id = str(uuid.uuid4())
    await api.json(
        "PUT", f"/api/v1/audits/{audit_id}", "inspector", expect=201, json=start_body(branch["_id"], clock.now())
    )
    await add_photo(services.db, audit_id, "lobby_photo", branch["_id"])
    await api.json(
        "PATCH",
        f"/api/v1/audits/{audit_id}/answers",
        "inspector",
        expect=200,
        json=passing_answers(clock.now(), badge_worn=False),
    )
    result = await api.json("POST", f"/api/v1/audits/{audit_id}/submit", "inspector", expect=200)
    resp = await api.call(
        "POST", f"/api/v1/findings/{result['findings'][0]['id']}/appeal", "branch_head", json={"reason": "r"}
    )
    assert_problem(resp, await resp.json(), 404)


async def open_rectifications(services: Services, audit_id: str) -> None:
    """What the dispatcher does on release (jobs do not run in API tests): the findings' fix work."""
    released = await services.db.events.find_one({"type": "audit.released", "subject.id": audit_id})
    assert released is not None

    async def work(uow: UnitOfWork) -> None:
        await rect_handler.HANDLERS[0].handle(uow, released)

    await services.transact(ActorInfo.system("dispatcher"), work)


def photo_form(seed: int) -> FormData:
    form = FormData()
    form.add_field("file", image_factory.phone_jpeg(taken=datetime(2026, 11, 2, 9, 30), seed=seed),
                   filename="appeal.jpg", content_type="image/jpeg")
    return form


async def test_appeal_photos_go_with_the_appeal_not_the_fix(api: Api, services: Services, clock: FakeClock) -> None:
    ctx = await released_audit(api, services, clock)
    await open_rectifications(services, ctx["audit_id"])
    finding_id = ctx["findings"]["hall_clean"]
    photo = await api.json("POST", f"/api/v1/findings/{finding_id}/appeal-photos", "branch_head", expect=201,
                           data=photo_form(1))
    assert (photo["owner_type"], photo["finding_id"], photo["rectification_id"]) == ("appeal", finding_id, None)
    again = await api.json("POST", f"/api/v1/findings/{finding_id}/appeal-photos", "branch_head", expect=200,
                           data=photo_form(1))  # a retried upload: the same photo
    assert again["id"] == photo["id"]
    rect = await services.db.rectifications.find_one({"finding_id": finding_id})
    assert rect is not None and not rect.get("photo_ids")  # it does not count toward the fix's photo

    appeal = await api.json("POST", f"/api/v1/findings/{finding_id}/appeal", "branch_head", expect=201,
                            json={"reason": "It had just rained", "photo_ids": [photo["id"]]})
    assert appeal["photo_ids"] == [photo["id"]]
    pending = await api.json("GET", "/api/v1/appeals?status=pending", "compliance", expect=200)
    assert [a["photo_ids"] for a in pending["items"]] == [[photo["id"]]]
    for who, status in (("compliance", 200), ("admin", 200), ("branch_head", 200), ("regional_manager", 200),
                        ("inspector", 404), ("mystery_shopper", 404)):
        resp = await api.call("GET", f"/api/v1/photos/{photo['id']}", who)
        assert resp.status == status, (who, resp.status)
    # Under appeal: no more photos for it.
    resp = await api.call("POST", f"/api/v1/findings/{finding_id}/appeal-photos", "branch_head", data=photo_form(2))
    assert_problem(resp, await resp.json(), 409)


async def test_an_appeal_names_only_its_own_appeal_photos(api: Api, services: Services, clock: FakeClock) -> None:
    ctx = await released_audit(api, services, clock)
    await open_rectifications(services, ctx["audit_id"])
    hall, atm = ctx["findings"]["hall_clean"], ctx["findings"]["atm_working"]
    other = await api.json("POST", f"/api/v1/findings/{atm}/appeal-photos", "branch_head", expect=201,
                           data=photo_form(3))
    rect = await services.db.rectifications.find_one({"finding_id": hall})
    assert rect is not None
    fix = await api.json("POST", f"/api/v1/rectifications/{rect['_id']}/photos", "branch_head", expect=201,
                         data=photo_form(4))
    audit_photo = await services.db.photos.find_one({"audit_id": ctx["audit_id"], "owner_type": "audit"})
    assert audit_photo is not None
    for photo_id in (other["id"], fix["id"], audit_photo["_id"], str(uuid.uuid4())):
        resp = await api.call("POST", f"/api/v1/findings/{hall}/appeal", "branch_head",
                              json={"reason": "r", "photo_ids": [photo_id]})
        body = await resp.json()
        assert_problem(resp, body, 422)
        assert body["errors"][0]["loc"] == ["body", "photo_ids"], body
    assert await services.db.appeals.count_documents({}) == 0


async def test_who_may_add_appeal_photos_and_until_when(api: Api, services: Services, clock: FakeClock) -> None:
    ctx = await released_audit(api, services, clock)
    path = f"/api/v1/findings/{ctx['findings']['hall_clean']}/appeal-photos"
    for who, status in (("inspector", 403), ("compliance", 403), ("regional_manager", 403)):
        resp = await api.call("POST", path, who, data=photo_form(5))
        assert_problem(resp, await resp.json(), status)
    resp = await api.call("POST", f"/api/v1/findings/{uuid.uuid4()}/appeal-photos", "branch_head",
                          data=photo_form(5))
    assert_problem(resp, await resp.json(), 404)
    clock.advance(timedelta(days=services.settings.appeal_window_days, seconds=1))
    await api.login("branch_head")  # the earlier sign-in has expired meanwhile
    resp = await api.call("POST", path, "branch_head", data=photo_form(5))
    assert_problem(resp, await resp.json(), 409)
    assert await services.db.photos.count_documents({"owner_type": "appeal"}) == 0
