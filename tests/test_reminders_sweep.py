"""The reminder sweep over a real database with an injected clock: times, escalation, exactly-once
delivery across instances, downtime, and the daily digest."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from server.app import bootstrap
from server.clock import FakeClock
from server.context import Services
from server.http.authz import principal_from_user
from server.services import rectifications as commands
from server.services.reminders import send_digests as digest_once
from server.services.reminders import send_due_reminders as sweep_once
from server.settings import Settings
from tests.conftest import reconfigure
from tests.test_rectifications_support import Org, add_after_photo, load_org, publish_checklist, release_audit

DUE = datetime(2026, 11, 5, 10, tzinfo=UTC)  # Thursday 18:00 Shanghai: a major finding released Monday 09:00


async def reminded(services: Services) -> list[tuple[str, int, int]]:
    """(recipient, level, step) of every reminder.sent, in order."""
    events = await services.db.events.find({"type": "reminder.sent"}).sort("occurred_at", 1).to_list()
    return [(e["payload"]["recipient_id"], e["payload"]["level"], e["payload"]["step"]) for e in events]


async def setup(services: Services) -> tuple[Org, dict[str, object]]:
    org = await load_org(services)
    await publish_checklist(services)
    rect = (await release_audit(services, org))[0]
    assert rect["due_at"] == DUE
    return org, rect


async def test_reminders_follow_the_schedule_and_escalate(services: Services, demo: object,
                                                          clock: FakeClock) -> None:
    org, _ = await setup(services)
    head, manager, compliance = org.user("ljz.head"), org.user("east.manager"), org.user("compliance")

    clock.set(DUE - timedelta(hours=48, seconds=1))
    assert await sweep_once(services, clock.now()) == 0
    clock.set(DUE - timedelta(hours=48))
    assert await sweep_once(services, clock.now()) == 1
    assert await sweep_once(services, clock.now()) == 0  # nothing twice
    clock.set(DUE - timedelta(hours=24))
    assert await sweep_once(services, clock.now()) == 1
    clock.set(DUE)
    assert await sweep_once(services, clock.now()) == 1
    assert await services.db.events.count_documents({"type": "rectification.overdue"}) == 1
    clock.set(DUE + timedelta(days=1))
    assert await sweep_once(services, clock.now()) == 1
    clock.set(DUE + timedelta(days=2))
    assert await sweep_once(services, clock.now()) == 1
    clock.set(DUE + timedelta(days=3))
    assert await sweep_once(services, clock.now()) == 1

    assert await reminded(services) == [
        (head, 0, 0), (head, 0, 1), (head, 0, 2),
        (head, 1, 3), (manager, 1, 3),
        (head, 1, 4), (manager, 1, 4),
        (head, 2, 5), (manager, 2, 5), (compliance, 2, 5),
    ]
    escalations = await services.db.events.find({"type": "rectification.escalated"}).to_list()
    assert [e["payload"]["level"] for e in escalations] == [1, 2]
    assert await services.db.events.count_documents({"type": "rectification.overdue"}) == 1
    stored = await services.db.rectifications.find_one({})
    assert stored is not None and stored["overdue"] is True and stored["escalation_level"] == 2
    # The manager reads an escalation in Chinese; the branch head got reminders.
    manager_inbox = await services.db.notifications.find({"user_id": manager}).sort("seq", 1).to_list()
    assert [n["kind"] for n in manager_inbox] == ["reminder.escalated"] * 3
    assert manager_inbox[0]["title"].startswith("逾期升级")
    head_kinds = [n["kind"] for n in await services.db.notifications.find({"user_id": head}).sort("seq", 1).to_list()]
    assert head_kinds == ["reminder.before", "reminder.before", "reminder.due"] + ["reminder.overdue"] * 3


async def test_verified_and_submitted_items_stop_reminding(services: Services, demo: object,
                                                           clock: FakeClock) -> None:
    org, rect = await setup(services)
    await add_after_photo(services, str(rect["_id"]))

    head = principal_from_user(await services.db.users.find_one({"_id": org.user("ljz.head")}) or {})
    await commands.submit_fix(services, head, commands.SubmitFix(str(rect["_id"]), "cleaned"))
    clock.set(DUE + timedelta(days=5))
    assert await sweep_once(services, clock.now()) == 0

    inspector = principal_from_user(await services.db.users.find_one({"_id": org.user("inspector")}) or {})
    await commands.verify_fix(services, inspector, commands.VerifyFix(str(rect["_id"]), "ok"))
    stored = await services.db.rectifications.find_one({"_id": rect["_id"]})
    assert stored is not None and "next_reminder_at" not in stored
    assert await sweep_once(services, clock.now()) == 0
    assert await reminded(services) == []


async def test_two_instances_sweeping_at_once_send_each_reminder_exactly_once(
        services: Services, demo: object, clock: FakeClock, settings: Settings, mongo_uri: str) -> None:
    org = await load_org(services)
    await publish_checklist(services)
    for _ in range(10):
        await release_audit(services, org, findings=[("hall_clean", "major", False),
                                                     ("badge_worn", "minor", False)])
    other = bootstrap(settings, mongo_uri, clock=clock)
    try:
        clock.set(DUE)  # the 48 h, 24 h and at-due steps of the major ones, the 48 h... of none of the minor
        counts = await asyncio.gather(sweep_once(services, clock.now()), sweep_once(other, clock.now()),
                                      sweep_once(services, clock.now()))
    finally:
        await other.client.close()
    majors = await services.db.rectifications.count_documents({"severity": "major"})
    assert majors == 10
    assert sum(counts) == 10
    sent = await reminded(services)
    assert len(sent) == 10
    assert {step for _, _, step in sent} == {2}
    assert await services.db.notifications.count_documents({}) == 10
    assert len({n["seq"] for n in await services.db.notifications.find({}).to_list()}) == 10


async def test_after_three_days_of_downtime_each_missed_reminder_is_sent_once(
        services: Services, demo: object, clock: FakeClock) -> None:
    org = await load_org(services)
    await publish_checklist(services)
    rects = await release_audit(services, org, findings=[("badge_worn", "minor", False),
                                                         ("cash_secure", "critical", False),
                                                         ("hall_clean", "major", False)])
    assert len(rects) == 3
    clock.advance(timedelta(days=3))  # Monday 09:00 -> Thursday 09:00 Shanghai, no sweep in between
    assert await sweep_once(services, clock.now()) == 2  # minor (7 days) has nothing due yet
    assert await sweep_once(services, clock.now()) == 0
    sent = await reminded(services)
    head, manager = org.user("ljz.head"), org.user("east.manager")
    # critical: due Tuesday 18:00; missed: 24 h before, at due, 1 day overdue (Wed 18:00) -> the latest only.
    # major: due Thursday 18:00; missed: 48 h and 24 h before -> the 24 h one only.
    assert sorted(sent) == sorted([(head, 1, 3), (manager, 1, 3), (head, 0, 1)])
    assert await services.db.events.count_documents({"type": "rectification.overdue"}) == 1
    skipped = {e["payload"]["rectification_id"]: e["payload"]["skipped_steps"]
               for e in await services.db.events.find({"type": "reminder.sent"}).to_list()}
    by_item = {r["item_id"]: r["_id"] for r in rects}
    assert skipped[by_item["hall_clean"]] == 1
    assert skipped[by_item["cash_secure"]] == 2  # the release came after its 48 h step was already past


async def test_quiet_hours_hold_a_reminder_until_the_morning(services: Services, demo: object,
                                                            clock: FakeClock) -> None:
    reconfigure(services, due_end_of_day="23:59:59")
    org = await load_org(services)
    rect = (await release_audit(services, org, findings=[("hall_clean", "major", False)]))[0]
    # Due Thursday 23:59:59 Shanghai; 24 h before is Wednesday 23:59:59, quiet: wait for Thursday 08:00.
    assert rect["due_at"] == datetime(2026, 11, 5, 15, 59, 59, tzinfo=UTC)
    clock.set(datetime(2026, 11, 4, 16, tzinfo=UTC))  # Thursday 00:00 local: step 0 (Tue 23:59:59) -> Wed 08:00
    assert await sweep_once(services, clock.now()) == 1
    clock.set(datetime(2026, 11, 4, 23, 59, tzinfo=UTC))  # 07:59 local
    assert await sweep_once(services, clock.now()) == 0
    clock.set(datetime(2026, 11, 5, 0, 0, tzinfo=UTC))  # 08:00 local
    assert await sweep_once(services, clock.now()) == 1


async def test_sweep_query_uses_the_next_reminder_index(services: Services, demo: object) -> None:
    await setup(services)
    plan = await services.db.rectifications.find({"next_reminder_at": {"$lte": services.clock.now()}}).sort(
        "next_reminder_at", 1).explain()
    assert "IXSCAN" in str(plan) and "COLLSCAN" not in str(plan)


async def test_daily_digest_once_per_branch_head_and_local_day(services: Services, demo: object,
                                                              clock: FakeClock) -> None:
    org = await load_org(services)
    await release_audit(services, org, findings=[("hall_clean", "major", False), ("badge_worn", "minor", False)])
    head = org.user("ljz.head")
    clock.set(datetime(2026, 11, 3, 0, 15, tzinfo=UTC))  # Tuesday 08:15 Shanghai: before the digest time
    assert await digest_once(services, clock.now()) == 0
    clock.set(datetime(2026, 11, 3, 0, 30, tzinfo=UTC))  # 08:30
    assert await digest_once(services, clock.now()) == 1
    clock.advance(timedelta(minutes=15))
    assert await digest_once(services, clock.now()) == 0
    digests = await services.db.notifications.find({"user_id": head, "kind": "digest"}).to_list()
    assert len(digests) == 1
    assert digests[0]["data"]["open"] == 2 and digests[0]["data"]["due_soon"] == 0
    assert "大厅整洁" in digests[0]["body"] or "hall_clean" in digests[0]["body"]
    clock.set(datetime(2026, 11, 4, 1, 0, tzinfo=UTC))  # Wednesday 09:00: the major one is due within 48 h
    assert await digest_once(services, clock.now()) == 1
    latest = await services.db.notifications.find_one({"user_id": head, "kind": "digest"}, sort=[("seq", -1)])
    assert latest is not None and latest["data"]["due_soon"] == 1 and latest["data"]["overdue"] == 0


async def test_apscheduler_job_runs_the_sweep_and_the_digest_cron(services: Services, demo: object,
                                                                  clock: FakeClock) -> None:
    from server.jobs.scheduler import jobs

    org = await load_org(services)
    await release_audit(services, org)
    (job,) = jobs(services)
    await job.start()
    try:
        assert job.scheduler is not None
        found = {j.id: j for j in job.scheduler.get_jobs()}
        assert set(found) == {"reminder-sweep", "daily-digest"}
        assert found["reminder-sweep"].trigger.interval == timedelta(seconds=30)
        assert found["reminder-sweep"].next_run_time == clock.now()  # at once on start: catch up after downtime
        assert "*/15" in str(found["daily-digest"].trigger)
    finally:
        await job.stop()
    clock.set(DUE - timedelta(hours=48))
    await job.sweep()  # what the interval trigger calls
    assert len(await reminded(services)) == 1
