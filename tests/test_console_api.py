"""GET /appeals/{id}/rescore-preview: the re-score compliance sees before overturning, equal to what the
decision then writes; nothing changes until they confirm."""

from __future__ import annotations

from server.clock import FakeClock
from server.context import Services
from tests.conftest import Api, assert_problem
from tests.test_appeals_api import released_audit


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
