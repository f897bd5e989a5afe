"""The rectification API through a real HTTP client: scope, listing, every transition and its refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from server.clock import FakeClock
from server.context import Services
from tests.conftest import Api, assert_problem
from tests.test_rectifications_support import add_after_photo, load_org, publish_checklist, release_audit

BASE = "/api/v1/rectifications"


async def problem(api: Api, method: str, path: str, who: str, status: int, **kw: Any) -> dict[str, Any]:
    resp = await api.call(method, path, who, **kw)
    body = await resp.json(content_type=None)
    assert_problem(resp, body, status)
    return dict(body)


async def test_branch_head_lists_own_branch_by_due_date_in_their_language(
        api: Api, services: Services) -> None:
    org = await load_org(services)
    await publish_checklist(services)
    await release_audit(services, org, findings=[("badge_worn", "minor", False), ("hall_clean", "major", False)])
    await release_audit(services, org, branch="SH-JA", findings=[("hall_clean", "major", False)])
    page = await api.json("GET", BASE, "branch_head", expect=200)
    items = page["items"]
    assert [i["item_id"] for i in items] == ["hall_clean", "badge_worn"]  # sorted by due date
    first = items[0]
    assert first["item_text"] == "大厅整洁"
    assert first["due_at_local"] == "2026-11-05T18:00:00+08:00"
    assert first["timezone"] == "Asia/Shanghai"
    assert first["overdue"] is False
    assert first["finding"]["severity"] == "major"
    assert first["inspector_photo_ids"] == ["inspector-photo-hall_clean"]
    assert first["assignee_id"] == org.user("ljz.head")
    english = await api.json("GET", f"{BASE}?lang=en&limit=1", "branch_head", expect=200)
    assert english["items"][0]["item_text"] == "The hall is clean"
    assert english["next_cursor"]
    rest = await api.json("GET", f"{BASE}?limit=1&cursor={english['next_cursor']}", "branch_head", expect=200)
    assert [i["item_id"] for i in rest["items"]] == ["badge_worn"]
    # Asking for another branch gives an empty page, compliance sees everything.
    other = await api.json("GET", f"{BASE}?branch_id={org.branches['SH-JA']['_id']}", "branch_head", expect=200)
    assert other["items"] == []
    everything = await api.json("GET", BASE, "compliance", expect=200)
    assert len(everything["items"]) == 3


async def test_another_branchs_rectification_is_404(api: Api, services: Services) -> None:
    org = await load_org(services)
    other = (await release_audit(services, org, branch="SH-JA"))[0]
    # inspector2's home is Madrid: nobody audits their own home branch
    madrid = (await release_audit(services, org, branch="BCN-PG", auditor="inspector2"))[0]
    await problem(api, "GET", f"{BASE}/{other['_id']}", "branch_head", 404)
    await problem(api, "POST", f"{BASE}/{other['_id']}/submit", "branch_head", 404, json={"note": "x"})
    await problem(api, "GET", f"{BASE}/{madrid['_id']}", "regional_manager", 404)  # another region
    await problem(api, "GET", f"{BASE}/{madrid['_id']}", "inspector", 404)  # not their audit
    await api.json("GET", f"{BASE}/{other['_id']}", "regional_manager", expect=200)
    await api.json("GET", f"{BASE}/{other['_id']}", "inspector", expect=200)
    await problem(api, "GET", f"{BASE}/no-such-id", "compliance", 404)


async def test_submit_verify_and_every_refusal(api: Api, services: Services) -> None:
    org = await load_org(services)
    rect = (await release_audit(services, org))[0]
    path = f"{BASE}/{rect['_id']}"
    body = await problem(api, "POST", f"{path}/submit", "branch_head", 422, json={"note": "cleaned"})
    assert body["errors"][0]["loc"] == ["photos"]
    await add_after_photo(services, rect["_id"])
    await problem(api, "POST", f"{path}/verify", "inspector", 409, json={"comment": "too early"})
    submitted = await api.json("POST", f"{path}/submit", "branch_head", expect=200, json={"note": "cleaned"})
    assert submitted["status"] == "submitted"
    assert submitted["note"] == "cleaned"
    assert submitted["next_reminder_at"] is None
    assert (await problem(api, "POST", f"{path}/submit", "branch_head", 409, json={"note": "again"}))[
        "type"].endswith("invalid-transition")
    # The branch head who submitted may not verify (nor may any branch head).
    await problem(api, "POST", f"{path}/verify", "branch_head", 403, json={"comment": "looks fine to me"})
    await problem(api, "POST", f"{path}/verify", "regional_manager", 403, json={"comment": "ok"})
    verified = await api.json("POST", f"{path}/verify", "inspector", expect=200, json={"comment": "good"})
    assert verified["status"] == "verified"
    assert verified["verified_by"] == org.user("inspector")
    assert verified["closed_at"] is not None
    assert [h["action"] for h in verified["history"]] == ["created", "submitted", "verified"]
    await problem(api, "POST", f"{path}/verify", "compliance", 409, json={"comment": "again"})
    await problem(api, "POST", f"{path}/reject", "compliance", 409, json={"comment": "no"})
    await problem(api, "POST", f"{path}/extension", "branch_head", 409,
                  json={"requested_due_at": "2026-12-01T10:00:00Z", "reason": "late"})
    audit = await services.db.audits.find_one({"_id": rect["audit_id"]})
    assert audit is not None and audit["open_rectifications"] == 0
    types = [e["type"] for e in await services.db.events.find({"subject.id": rect["_id"]}).sort(
        "occurred_at", 1).to_list()]
    assert types == ["rectification.created", "rectification.submitted", "rectification.verified"]
    actions = {t["action"] for t in await services.db.trail.find({"entity_id": rect["_id"]}).to_list()}
    assert {"rectification.submit", "rectification.verify"} <= actions


async def test_reject_returns_to_open_with_a_new_deadline(api: Api, services: Services, clock: FakeClock) -> None:
    org = await load_org(services)
    rect = (await release_audit(services, org))[0]
    path = f"{BASE}/{rect['_id']}"
    await add_after_photo(services, rect["_id"])
    await api.json("POST", f"{path}/submit", "branch_head", expect=200, json={"note": "done"})
    await problem(api, "POST", f"{path}/reject", "compliance", 422, json={"comment": "", "due_at": None})
    await problem(api, "POST", f"{path}/reject", "compliance", 422,
                  json={"comment": "still dirty", "due_at": "2020-01-01T00:00:00Z"})
    rejected = await api.json("POST", f"{path}/reject", "compliance", expect=200,
                              json={"comment": "still dirty", "due_at": "2026-11-10T10:00:00Z"})
    assert rejected["status"] == "open"
    assert rejected["due_at"].startswith("2026-11-10T10:00:00")
    assert rejected["next_reminder_at"] is not None
    assert rejected["history"][-1]["action"] == "rejected"
    assert rejected["history"][-1]["comment"] == "still dirty"
    # Without a date the severity policy counts again from now (major: 3 days).
    await api.json("POST", f"{path}/submit", "branch_head", expect=200, json={"note": "again"})
    again = await api.json("POST", f"{path}/reject", "inspector", expect=200, json={"comment": "no"})
    assert again["due_at_local"] == "2026-11-05T18:00:00+08:00"
    assert await services.db.events.count_documents({"type": "rectification.rejected"}) == 2


async def test_extension_request_and_decision(api: Api, services: Services) -> None:
    org = await load_org(services)
    rect = (await release_audit(services, org))[0]
    path = f"{BASE}/{rect['_id']}"
    await problem(api, "POST", f"{path}/extension", "branch_head", 422,
                  json={"requested_due_at": "2026-11-04T10:00:00Z", "reason": "earlier than the deadline"})
    await problem(api, "POST", f"{path}/extension/decision", "compliance", 409, json={"approve": True})
    asked = await api.json("POST", f"{path}/extension", "branch_head", expect=200,
                           json={"requested_due_at": "2026-11-20T10:00:00Z", "reason": "contractor booked"})
    assert asked["extension"]["status"] == "pending"
    await problem(api, "POST", f"{path}/extension", "branch_head", 409,
                  json={"requested_due_at": "2026-11-21T10:00:00Z", "reason": "again"})
    await problem(api, "POST", f"{path}/extension/decision", "branch_head", 403, json={"approve": True})
    await problem(api, "POST", f"{path}/extension/decision", "inspector", 403, json={"approve": True})
    decided = await api.json("POST", f"{path}/extension/decision", "regional_manager", expect=200,
                             json={"approve": True, "comment": "fine"})
    assert decided["extension"]["status"] == "approved"
    assert decided["due_at"].startswith("2026-11-20T10:00:00")
    assert decided["next_reminder_at"].startswith("2026-11-18T10:00:00")  # 48 h before the new deadline
    await problem(api, "POST", f"{path}/extension/decision", "compliance", 409, json={"approve": False})
    kinds = [e["type"] for e in await services.db.events.find({"subject.id": rect["_id"]}).to_list()]
    assert "rectification.extension_requested" in kinds and "rectification.extension_decided" in kinds


async def test_overdue_is_computed_and_filterable(api: Api, services: Services, clock: FakeClock) -> None:
    org = await load_org(services)
    await release_audit(services, org, findings=[("cash_secure", "critical", False), ("badge_worn", "minor", False)])
    clock.advance(timedelta(days=2))
    api.tokens.clear()  # the access tokens expired with the clock jump
    overdue = await api.json("GET", f"{BASE}?overdue=true", "branch_head", expect=200)
    assert [i["item_id"] for i in overdue["items"]] == ["cash_secure"]
    assert overdue["items"][0]["overdue"] is True
    on_time = await api.json("GET", f"{BASE}?overdue=false", "branch_head", expect=200)
    assert [i["item_id"] for i in on_time["items"]] == ["badge_worn"]
    by_status = await api.json("GET", f"{BASE}?status=verified", "branch_head", expect=200)
    assert by_status["items"] == []
    assert clock.now() > datetime(2026, 11, 3, 10, tzinfo=UTC)
