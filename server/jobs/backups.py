"""Scheduled backups: every BACKUP_EVERY_H into BACKUP_DIR, the newest BACKUP_KEEP kept, once across instances.

Whether one is due is read from the database (`backup_runs`, one document per attempt), so instances agree
whatever their clocks and restarts; the one that takes the `backups` lease takes the backup, renewing the
lease while it writes. A failure is logged, counted in /metrics (`branch_audit_backups_failed_total`) and
told to every admin through their notification channels, with a trail entry; the next attempt comes an
hour later (schedule.RETRY_AFTER), not a whole period."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from datetime import timedelta
from pathlib import Path

from pymongo.errors import PyMongoError

from server.backup.create import BackupFailed, create_backup
from server.backup.manifest import Manifest
from server.backup.schedule import backup_name, is_due, to_prune
from server.backup.snapshot import NoPointInTime
from server.context import ActorInfo, Services, UnitOfWork
from server.db import Doc, connect
from server.jobs.loop import PollingLoop
from server.notify import channels as notify
from server.notify.messages import render
from server.storage.meta import acquire_lease, release_lease

log = logging.getLogger("branch_audit.backups")

LEASE = "backups"
RUNS = "backup_runs"
LEASE_TTL = timedelta(seconds=60)
RENEW_EVERY_S = 20.0
# How often an instance looks whether a backup is due (one small read).
POLL_S = 60.0
RUNS_KEPT = 200
FAILED_COUNTER = "backups_failed_total"
HEARTBEAT_TIMEOUT_MS = 600_000
TAKEN_COUNTER = "backups_total"


async def last_run(services: Services) -> Doc | None:
    found = await services.db[RUNS].find({}).sort("started_at", -1).limit(1).to_list()
    return found[0] if found else None


async def _keep_lease(services: Services) -> None:
    """Renew while the backup is written. Were it lost all the same, another instance would still find
    this attempt's `running` record and wait (RETRY_AFTER) rather than start a second backup."""
    while True:
        await asyncio.sleep(RENEW_EVERY_S)
        with contextlib.suppress(PyMongoError):
            await acquire_lease(services.db, LEASE, services.instance_id, services.clock.now(), LEASE_TTL)


async def tell_admins(services: Services, name: str, error: str) -> None:
    """Every admin, over the channels they chose, and a trail entry; a database that is down is only logged."""
    channels = notify.channels_of(services)

    async def work(uow: UnitOfWork) -> None:
        admins = await notify.load_recipients(uow.db, await notify.users_with_role(uow.db, "admin"))
        for recipient in admins.values():
            message = render("admin.backup_failed", recipient.language, {"name": name, "error": error},
                             data={"backup": name, "error": error})
            await notify.deliver(uow, recipient, message, channels)
        uow.record("backup.fail", "backup", name, {"error": error})

    try:
        await services.transact(ActorInfo.system("backups"), work)
    except Exception:
        log.exception("could not tell admins about the failed backup", extra={"backup": name})


def prune(directory: Path, keep: int, in_progress: str | None = None) -> list[str]:
    """Remove the backups beyond the newest `keep` (and abandoned partial ones); returns their names."""
    removed = to_prune([p.name for p in directory.iterdir() if p.is_dir()], keep, in_progress)
    for name in removed:
        shutil.rmtree(directory / name, ignore_errors=True)
    return removed


async def _backup_with_own_client(services: Services, target: Path) -> Manifest:
    """The backup on a client of its own whose heartbeat outlasts a large find (secantusd-py answers no
    heartbeat while it materialises one, and a missed heartbeat cancels what is in flight)."""
    uri = services.shared.mongodb_uri
    pace = services.settings.backup_max_mb_s
    if not uri:
        return await create_backup(services.client, services.db, target, clock=services.clock, max_mb_s=pace)
    client = connect(uri, timeout_ms=services.settings.db_timeout_ms, socket_timeout_ms=None,
                     heartbeat_timeout_ms=HEARTBEAT_TIMEOUT_MS, max_pool_size=4)
    try:
        return await create_backup(client, client[services.db.name], target, clock=services.clock, max_mb_s=pace)
    finally:
        await client.close()


async def take_scheduled_backup(services: Services, directory: Path) -> Doc:
    """One backup into `directory` under the caller's lease; records the attempt, prunes, and on failure
    logs, counts and tells the admins. Returns the attempt's record."""
    now = services.clock.now()
    name = backup_name(now)
    runs = services.db[RUNS]
    run: Doc = {"_id": name, "started_at": now, "status": "running", "instance": services.instance_id,
                "path": str(directory / name)}
    await runs.replace_one({"_id": name}, run, upsert=True)
    try:
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        manifest = await _backup_with_own_client(services, directory / name)
    except (BackupFailed, NoPointInTime, PyMongoError, OSError) as exc:
        error = str(exc) or type(exc).__name__
        log.error("scheduled backup failed: %s", error, extra={"backup": name, "error": error})
        services.metrics.counters[FAILED_COUNTER] += 1
        run.update(status="failed", error=error[:1000], finished_at=services.clock.now())
        with contextlib.suppress(PyMongoError):
            await runs.replace_one({"_id": name}, run)
        await tell_admins(services, name, error[:300])
        return run
    services.metrics.counters[TAKEN_COUNTER] += 1
    run.update(status="succeeded", finished_at=services.clock.now(), bytes=manifest.total_size,
               photo_files=manifest.photo_files, schema_version=manifest.schema_version)
    await runs.replace_one({"_id": name}, run)
    removed = await asyncio.to_thread(prune, directory, services.settings.backup_keep, name)
    log.info("scheduled backup %s taken (%d bytes); pruned %s", name, manifest.total_size, removed or "none",
             extra={"backup": name, "bytes": manifest.total_size, "pruned": removed})
    old = await runs.find({}, {"_id": 1}).sort("started_at", -1).skip(RUNS_KEPT).to_list()
    if old:
        await runs.delete_many({"_id": {"$in": [d["_id"] for d in old]}})
    return run


class ScheduledBackups(PollingLoop):
    """Looks every minute whether a backup is due; the instance holding the lease takes it."""

    name = "scheduled-backups"

    def __init__(self, services: Services, directory: Path, *, poll_s: float = POLL_S) -> None:
        super().__init__(poll_s=poll_s)
        self.services = services
        self.directory = directory
        self.every = timedelta(hours=services.settings.backup_every_h)
        self.services.metrics.counters[FAILED_COUNTER] += 0  # present at 0 for alerting rules

    async def due(self) -> bool:
        last = await last_run(self.services) or {}
        return is_due(self.services.clock.now(), last.get("started_at"), last.get("status") == "succeeded",
                      self.every)

    async def one_pass(self) -> int:
        services = self.services
        if not await self.due():
            return 0
        if not await acquire_lease(services.db, LEASE, services.instance_id, services.clock.now(), LEASE_TTL):
            return 0
        keeper = asyncio.create_task(_keep_lease(services))
        try:
            if await self.due():  # another instance may have taken it just before we got the lease
                await take_scheduled_backup(services, self.directory)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            with contextlib.suppress(PyMongoError):
                await release_lease(services.db, LEASE, services.instance_id)
        return 0


def jobs(services: Services) -> list[ScheduledBackups]:
    directory = services.settings.backup_dir
    return [ScheduledBackups(services, directory)] if directory else []
