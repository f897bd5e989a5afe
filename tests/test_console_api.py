"""What the console's screens read: GET /appeals/{id}/rescore-preview (the re-score compliance sees before
overturning, equal to what the decision then writes; nothing changes until they confirm), and a region's
overdue count beside its escalations list."""

from __future__ import annotations

from datetime import timedelta

from server.clock import FakeClock
from server.context import Services
from tests.conftest import Api, assert_problem
from tests.test_appeals_api import released_audit
from tests.test_rectifications_support import add_after_photo, load_org, release_audit


async def test_rescore_preview_shows_what_overturning_will_write(api: Api, services: Services,
                                                                 clock: FakeClock) -> None:
    ctx = await released_audit(api, services, clock)
    finding_id = ctx["findings"]["atm_working"]
    appeal = await api.json("POST", f"/api/v1/findings/{finding_id}/appeal", "branch_head", expect=201,
                            json={"reason": "The ATM was being refilled"})
    preview = await api.json("GET", f"/api/v1/appeals/{appeal['id']}/rescore-preview", "compliance", expect=200)
    assert preview["item_id"] == "atm_working" and preview["audit_id"] == ctx["audit_id"]
    assert (preview["current_grade"], preview["current_critical_failed"]) == ("F", True)
    assert (preview["score_if_overturned"], preview["grade_if_overturned"]) == (87.5, "B")
    assert preview["critical_failed_if_overturned"] is False
    unchanged = await services.db.audits.find_one({"_id": ctx["audit_id"]})
    assert unchanged is not None and unchanged["grade"] == "F"

    await api.json("POST", f"/api/v1/appeals/{appeal['id']}/decision", "compliance", expect=200,
                   json={"outcome": "overturned", "comment": "Carrier log confirms"})
    audit = await services.db.audits.find_one({"_id": ctx["audit_id"]})
    assert audit is not None and (audit["score"], audit["grade"]) == (87.5, "B")
    resp = await api.call("GET", f"/api/v1/appeals/{appeal['id']}/rescore-preview", "compliance")
    assert_problem(resp, await resp.json(), 409)


async def test_rescore_preview_is_for_reviewers_only(api: Api, services: Services, clock: FakeClock) -> None:
    ctx = await released_audit(api, services, clock)
    appeal = await api.json("POST", f"/api/v1/findings/{ctx['findings']['hall_clean']}/appeal", "branch_head",
                            expect=201, json={"reason": "Cleaned at opening"})
    for role in ("branch_head", "regional_manager", "inspector"):
        resp = await api.call("GET", f"/api/v1/appeals/{appeal['id']}/rescore-preview", role)
        assert_problem(resp, await resp.json(), 403)
    resp = await api.call("GET", "/api/v1/appeals/no-such-appeal/rescore-preview", "compliance")
    assert_problem(resp, await resp.json(), 404)


async def test_the_regions_overdue_count_and_its_escalations_list_name_the_same_work(
        api: Api, services: Services, clock: FakeClock) -> None:
    """A fix handed in before its deadline but not verified by then is still overdue work (the verifier's turn):
    the region card's overdue_now and the escalations screen's list (the rectifications flagged overdue) agree."""
    org = await load_org(services)
    rects = {r["item_id"]: r for r in await release_audit(
        services, org, findings=[("cash_secure", "critical", False), ("hall_clean", "major", False),
                                 ("badge_worn", "minor", False)])}
    waiting, late, on_time = rects["cash_secure"], rects["hall_clean"], rects["badge_worn"]
    await add_after_photo(services, waiting["_id"])
    await api.json("POST", f"/api/v1/rectifications/{waiting['_id']}/submit", "branch_head", expect=200,
                   json={"note": "locked away"})
    clock.set(max(waiting["due_at"], late["due_at"]) + timedelta(hours=1))
    assert clock.now() < on_time["due_at"]
    api.tokens.clear()  # the access tokens expired with the clock jump

    listed = await api.json("GET", "/api/v1/rectifications?limit=100", "regional_manager", expect=200)
    overdue = {i["id"]: i["status"] for i in listed["items"] if i["overdue"]}
    assert overdue == {waiting["_id"]: "submitted", late["_id"]: "open"}
    report = await api.json("GET", "/api/v1/reports/rectifications?group_by=branch", "regional_manager", expect=200)
    branch = next(i for i in report["items"] if i["key"] == org.branches["SH-LJZ"]["_id"])
    assert branch["overdue_now"] == len(overdue) == 2
    filtered = await api.json("GET", "/api/v1/rectifications?overdue=true", "regional_manager", expect=200)
    assert {i["id"] for i in filtered["items"]} == set(overdue)
