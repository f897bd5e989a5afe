"""Scheduled backups: when one is due, which old ones go, once across instances, and a failure is logged,
counted in /metrics and told to the admins."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from server.backup.schedule import RETRY_AFTER, backup_name, is_backup_name, is_due, to_prune
from server.clock import FakeClock
from server.context import Services
from server.jobs.backups import FAILED_COUNTER, RUNS, ScheduledBackups, jobs
from tests.conftest import Api

DAY = timedelta(days=1)
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)

# --- when, what name, what goes (no database) ------------------------------------------------------------


def test_names_sort_in_time_order_and_are_recognised() -> None:
    names = [backup_name(T0 + timedelta(hours=h)) for h in (30, 2, 11)]
    assert sorted(names) == [backup_name(T0 + timedelta(hours=h)) for h in (2, 11, 30)]
    assert backup_name(T0) == "branch-audit-20261102T010000Z" and is_backup_name(backup_name(T0))
    assert not is_backup_name("branch-audit-20261102T010000Z.partial") and not is_backup_name("notes")


def test_due_a_period_after_a_success_and_an_hour_after_a_failure() -> None:
    assert is_due(T0, None, False, DAY)
    assert not is_due(T0 + DAY - timedelta(seconds=1), T0, True, DAY)
    assert is_due(T0 + DAY, T0, True, DAY)
    assert not is_due(T0 + RETRY_AFTER - timedelta(seconds=1), T0, False, DAY)
    assert is_due(T0 + RETRY_AFTER, T0, False, DAY)
    assert is_due(T0 + timedelta(minutes=30), T0, False, timedelta(minutes=30))  # a short period wins


def test_pruning_keeps_the_newest_and_removes_abandoned_partials_only() -> None:
    names = [backup_name(T0 + n * DAY) for n in range(5)]
    partial_old = backup_name(T0 - DAY) + ".partial"
    current = backup_name(T0 + 9 * DAY)
    listing = [*names, partial_old, current + ".partial", "README", "branch-audit-manual-copy"]
    assert to_prune(listing, 3, in_progress=current) == [names[1], names[0], partial_old]
    assert to_prune(names, 0) == names[:4][::-1]  # at least one is always kept


# --- the job against the database ------------------------------------------------------------------------


def instance(services: Services, directory: Path, **settings: object) -> ScheduledBackups:
    """Another instance of the server: same database, its own id and settings."""
    configured = services.settings.model_copy(update={"backup_dir": directory, **settings})
    other = dataclasses.replace(services, settings=configured, instance_id=uuid.uuid4().hex[:12])
    return ScheduledBackups(other, directory)


async def test_two_instances_take_one_backup_and_old_ones_are_pruned(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    directory = tmp_path / "backups"
    await services.db.audits.insert_one({"_id": "a-1"})
    a, b = instance(services, directory, backup_keep=2), instance(services, directory, backup_keep=2)
    await asyncio.gather(a.one_pass(), b.one_pass())
    assert [p.name for p in directory.iterdir()] == [backup_name(clock.now())]
    runs = await services.db[RUNS].find({}).to_list()
    assert [r["status"] for r in runs] == ["succeeded"]

    clock.advance(timedelta(hours=23))
    await asyncio.gather(a.one_pass(), b.one_pass())
    assert len(list(directory.iterdir())) == 1  # not due yet
    taken = [backup_name(clock.now() - timedelta(hours=23))]
    for _ in range(3):
        clock.advance(DAY)
        await asyncio.gather(a.one_pass(), b.one_pass())
        taken.append(backup_name(clock.now()))
    assert sorted(p.name for p in directory.iterdir()) == taken[-2:]
    assert await services.db[RUNS].count_documents({"status": "succeeded"}) == 4
    assert await services.db.leases.find_one({"_id": "backups"}) is None


async def test_no_directory_no_job(services: Services) -> None:
    assert jobs(services) == []


async def test_a_failed_backup_is_logged_counted_and_told_to_the_admins(
    api: Api, services: Services, clock: FakeClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the backups should go")
    job = instance(services, blocked)
    await job.one_pass()

    run = await services.db[RUNS].find_one({})
    assert run is not None and run["status"] == "failed" and run["error"]
    assert [r.levelname for r in caplog.records if r.getMessage().startswith("scheduled backup failed: ")] == ["ERROR"]
    metrics = await (await api.call("GET", "/metrics")).text()
    assert f"branch_audit_{FAILED_COUNTER} 1" in metrics
    admin = await services.db.users.find_one({"role": "admin"})
    assert admin is not None
    inbox = await services.db.notifications.find({"user_id": admin["_id"]}).to_list()
    assert [n["kind"] for n in inbox] == ["admin.backup_failed"]
    assert run["_id"] in inbox[0]["body"]
    assert await services.db.trail.find_one({"action": "backup.fail", "entity_id": run["_id"]}) is not None

    await job.one_pass()  # retried an hour later, not at once
    assert await services.db[RUNS].count_documents({}) == 1
    clock.advance(RETRY_AFTER)
    await job.one_pass()
    assert await services.db[RUNS].count_documents({"status": "failed"}) == 2
    assert f"branch_audit_{FAILED_COUNTER} 2" in await (await api.call("GET", "/metrics")).text()
