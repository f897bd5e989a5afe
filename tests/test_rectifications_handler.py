"""Rectifications created from audit.released and cancelled by appeal.decided (the real handler)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from schemas.audit_events import AuditReleased
from server.clock import FakeClock
from server.context import ActorInfo, Services, UnitOfWork
from tests.test_rectifications_support import (
    CHECKLIST_KEY,
    load_org,
    publish_checklist,
    release_audit,
    released_event,
    run_handler,
)


async def test_audit_released_creates_one_open_rectification_per_finding(
        services: Services, demo: object, clock: FakeClock) -> None:
    org = await load_org(services)
    await publish_checklist(services)
    rects = await release_audit(services, org, findings=[("badge_worn", "minor", False),
                                                         ("hall_clean", "major", False)])
    assert len(rects) == 2
    badge, hall = rects
    assert {r["status"] for r in rects} == {"open"}
    assert {r["assignee_id"] for r in rects} == {org.user("ljz.head")}
    # Released Monday 09:00 Shanghai: major 3 days -> Thursday 18:00, minor 7 days -> next Monday 18:00.
    assert hall["due_at"] == datetime(2026, 11, 5, 10, tzinfo=UTC)
    assert badge["due_at"] == datetime(2026, 11, 9, 10, tzinfo=UTC)
    assert hall["item_text"]["zh-CN"] == "大厅整洁"
    assert hall["inspector_photo_ids"] == ["inspector-photo-hall_clean"]
    assert hall["photo_ids"] == []
    # The first reminder is 48 h before the deadline.
    assert hall["next_reminder_at"] == datetime(2026, 11, 3, 10, tzinfo=UTC)
    assert hall["reminder_step"] == 0
    audit = await services.db.audits.find_one({"_id": hall["audit_id"]})
    assert audit is not None and audit["open_rectifications"] == 2
    events = await services.db.events.find({"type": "rectification.created"}).to_list()
    assert sorted(e["payload"]["rectification_id"] for e in events) == sorted(r["_id"] for r in rects)
    assert await services.db.trail.count_documents({"action": "rectification.create"}) == 2


async def test_handling_the_same_release_twice_creates_nothing_more(services: Services, demo: object) -> None:
    org = await load_org(services)
    rects = await release_audit(services, org, findings=[("hall_clean", "major", False)])
    audit = await services.db.audits.find_one({"_id": rects[0]["audit_id"]})
    assert audit is not None
    finding_ids = [rects[0]["finding_id"]]
    again = released_event(audit["_id"], org.branches["SH-LJZ"], finding_ids, audit["released_at"])
    await run_handler(services, again)
    assert await services.db.rectifications.count_documents({"audit_id": audit["_id"]}) == 1
    audit = await services.db.audits.find_one({"_id": audit["_id"]})
    assert audit is not None and audit["open_rectifications"] == 1
    assert await services.db.events.count_documents({"type": "rectification.created"}) == 1


async def test_fixed_on_spot_finding_is_created_verified_with_the_inspectors_photos(
        services: Services, demo: object) -> None:
    org = await load_org(services)
    rects = await release_audit(services, org, findings=[("hall_clean", "major", True)], photo_ids=["p-spot"])
    rect = rects[0]
    assert rect["status"] == "verified"
    assert rect["photo_ids"] == ["p-spot"]
    assert rect["verified_by"] == org.user("inspector")
    assert "next_reminder_at" not in rect
    audit = await services.db.audits.find_one({"_id": rect["audit_id"]})
    assert audit is not None and audit["open_rectifications"] == 0


async def test_checklist_due_policy_in_working_days(services: Services, demo: object, clock: FakeClock) -> None:
    org = await load_org(services)
    await publish_checklist(services, {"critical": 1, "major": 2, "minor": 5, "working_days": True})
    clock.set(datetime(2026, 11, 6, 2, tzinfo=UTC))  # Friday 10:00 Shanghai
    rects = await release_audit(services, org, findings=[("hall_clean", "major", False)])
    assert rects[0]["due_at"] == datetime(2026, 11, 10, 10, tzinfo=UTC)  # Tuesday 18:00


async def test_a_spanish_branchs_deadline_uses_madrid_time(services: Services, demo: object) -> None:
    org = await load_org(services)
    rects = await release_audit(services, org, branch="BCN-PG", auditor="inspector2",
                                findings=[("cash_secure", "critical", False)])
    # Released 02:00 Monday in Barcelona (01:00 UTC): one day -> Tuesday 18:00 CET = 17:00 UTC.
    assert rects[0]["due_at"] == datetime(2026, 11, 3, 17, tzinfo=UTC)
    assert rects[0]["assignee_id"] == org.user("bcn.head")


async def test_overturned_appeal_cancels_the_rectification_and_stops_reminders(
        services: Services, demo: object) -> None:
    org = await load_org(services)
    rect = (await release_audit(services, org))[0]
    upheld = appeal_event(rect, "upheld")
    await run_handler(services, upheld)
    assert (await services.db.rectifications.find_one({"_id": rect["_id"]}) or {})["status"] == "open"
    await run_handler(services, appeal_event(rect, "overturned"))
    cancelled = await services.db.rectifications.find_one({"_id": rect["_id"]})
    assert cancelled is not None
    assert cancelled["status"] == "cancelled"
    assert "next_reminder_at" not in cancelled
    assert cancelled["history"][-1]["action"] == "cancelled"
    audit = await services.db.audits.find_one({"_id": rect["audit_id"]})
    assert audit is not None and audit["open_rectifications"] == 0
    assert await services.db.events.count_documents({"type": "rectification.cancelled"}) == 1
    # A repeat changes nothing.
    await run_handler(services, appeal_event(rect, "overturned"))
    assert await services.db.events.count_documents({"type": "rectification.cancelled"}) == 1


def appeal_event(rect: dict[str, object], outcome: str) -> dict[str, object]:
    return {"_id": str(uuid.uuid4()), "type": "appeal.decided", "actor": {"id": None, "role": "compliance"},
            "payload": {"appeal_id": "a1", "finding_id": rect["finding_id"], "audit_id": rect["audit_id"],
                        "branch_id": rect["branch_id"], "outcome": outcome}}


async def test_dispatcher_drain_runs_the_handlers_end_to_end(services: Services, demo: object) -> None:
    """Through the real outbox and dispatcher: the rectification and the branch head's notification."""
    from server.jobs.dispatcher import drain

    org = await load_org(services)
    await publish_checklist(services)
    branch = org.branches["SH-LJZ"]
    audit_id = str(uuid.uuid4())
    now = services.clock.now()
    inspector = org.user("inspector")
    await services.db.audits.insert_one({"_id": audit_id, "branch_id": branch["_id"],
                                         "region_id": branch["region_id"], "checklist_key": CHECKLIST_KEY,
                                         "checklist_version": 1, "auditor_id": inspector,
                                         "auditor_role": "inspector", "status": "released"})
    await services.db.findings.insert_one({"_id": "f-drain", "audit_id": audit_id, "branch_id": branch["_id"],
                                           "region_id": branch["region_id"], "item_id": "hall_clean",
                                           "severity": "major", "critical": False, "photo_ids": [],
                                           "status": "open", "fixed_on_spot": False})

    async def release(uow: UnitOfWork) -> None:
        uow.emit(AuditReleased(audit_id=audit_id, branch_id=branch["_id"], region_id=branch["region_id"],
                               program_id=None, checklist_key=CHECKLIST_KEY, checklist_version=1, score=70.0,
                               grade="C", critical_failed=False, finding_ids=["f-drain"], released_at=now),
                 subject_type="audit", subject_id=audit_id, branch_id=branch["_id"])

    await services.transact(ActorInfo(user_id=org.user("compliance"), role="compliance"), release)
    await drain(services)
    rect = await services.db.rectifications.find_one({"finding_id": "f-drain"})
    assert rect is not None and rect["status"] == "open"
    inbox = await services.db.notifications.find({"user_id": org.user("ljz.head")}).to_list()
    assert [n["kind"] for n in inbox] == ["rectification.created"]
    assert "大厅整洁" in inbox[0]["title"]  # the branch head reads Chinese
