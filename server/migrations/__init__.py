"""Numbered changes of stored shapes, applied once across instances, and the schema version they reach.

The database records each applied migration in `schema_migrations {_id: version, name, applied_at, by,
seconds}`; its schema version is the highest recorded. `branch-audit migrate` and every start of the server
apply the missing ones in order, holding the `schema-migrations` lease (server.storage.meta), so two
instances starting together never run one twice: the second waits for the lease, then finds them applied.
Each migration is idempotent all the same (it may be cut off by a crash and run again from the start), and
is recorded only once it has finished.

A database whose schema version is newer than this release knows was written by a newer release: the
server refuses to serve it rather than misread it. A database a restore did not finish is refused too.

Adding one: a module `mNNNN_<what>.py` exposing `MIGRATION = Migration(NNNN, "<what>", apply)`, listed in
`registered()`, with a test that writes data in the previous shape and serves it after the upgrade."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError, PyMongoError

from server.clock import Clock
from server.db import Database
from server.storage.meta import acquire_lease, release_lease

if TYPE_CHECKING:
    from server.context import Services

log = logging.getLogger("branch_audit.migrations")

COLLECTION = "schema_migrations"
LEASE = "schema-migrations"
# A restore writes this document first and removes it once everything is verified (server.backup.restore).
RESTORE_MARKER_COLLECTION = "restore_in_progress"
LEASE_TTL = timedelta(seconds=60)
# How often the holder renews the lease while a migration runs, and a waiter looks again.
RENEW_EVERY_S = 10.0
WAIT_POLL_S = 0.5


@dataclass(frozen=True)
class Migration:
    """One numbered change; `apply` must leave already-migrated data as it is (it may run again). It gets
    the services (database, clock, settings and what is derived from them, such as the reminder policy)."""

    version: int
    name: str
    apply: Callable[[Services], Awaitable[None]]


class SchemaError(RuntimeError):
    """The database cannot be served by this release; the message is one readable line."""


def registered() -> tuple[Migration, ...]:
    """Every migration this release ships, in order."""
    from server.migrations import m0001_baseline, m0002_generated_rectifications

    return (m0001_baseline.MIGRATION, m0002_generated_rectifications.MIGRATION)


def check_numbering(migrations: Sequence[Migration]) -> None:
    """Versions are 1, 2, 3, ... with no gap or repeat (a gap would strand data between two releases)."""
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations must be numbered 1..n in order, found {versions}")


def latest(migrations: Sequence[Migration] | None = None) -> int:
    """The schema version this release writes."""
    found = registered() if migrations is None else migrations
    return found[-1].version if found else 0


def pending(current: int, migrations: Sequence[Migration]) -> list[Migration]:
    """What a database at `current` still needs, in order."""
    return [m for m in migrations if m.version > current]


async def schema_version(db: Database, session: AsyncClientSession | None = None) -> int:
    """The highest migration recorded (0: data from before migrations, or an empty database)."""
    found = await db[COLLECTION].find({}, {"_id": 1}, session=session).sort("_id", -1).limit(1).to_list()
    return int(found[0]["_id"]) if found else 0


def _too_new(version: int, understood: int) -> SchemaError:
    return SchemaError(f"the database is at schema version {version}, but this release understands up to "
                       f"{understood}: run the newer branch-audit that wrote it (or restore a backup it can read)")


async def require_understood(db: Database, understood: int | None = None) -> int:
    """The schema version, after refusing data this release must not serve; no writes."""
    if await db[RESTORE_MARKER_COLLECTION].find_one({}, {"_id": 1}) is not None:
        raise SchemaError("a restore into this database did not finish: run `branch-audit backup restore "
                          "PATH --force` again before serving it")
    version = await schema_version(db)
    limit = latest() if understood is None else understood
    if version > limit:
        raise _too_new(version, limit)
    return version


async def _wait_for_lease(db: Database, owner: str, clock: Clock) -> None:
    waited_since = time.monotonic()
    told = False
    while not await acquire_lease(db, LEASE, owner, clock.now(), LEASE_TTL):
        if not told and time.monotonic() - waited_since > 5:
            log.info("waiting for another instance to finish migrating the database")
            told = True
        await asyncio.sleep(WAIT_POLL_S)


async def _keep_lease(db: Database, owner: str, clock: Clock, lost: asyncio.Event) -> None:
    while True:
        await asyncio.sleep(RENEW_EVERY_S)
        try:
            held = await acquire_lease(db, LEASE, owner, clock.now(), LEASE_TTL)
        except PyMongoError:
            continue  # the next renewal may reach it; the TTL covers several misses
        if not held:
            lost.set()
            return


async def migrate(services: Services, *, migrations: Sequence[Migration] | None = None) -> list[int]:
    """Apply every pending migration once across instances; returns the versions this call applied."""
    db, owner, clock = services.db, services.instance_id, services.clock
    found = registered() if migrations is None else tuple(migrations)
    check_numbering(found)
    newest = latest(found)
    current = await require_understood(db, newest)
    if not pending(current, found):
        return []
    await _wait_for_lease(db, owner, clock)
    applied: list[int] = []
    lost = asyncio.Event()
    keeper = asyncio.create_task(_keep_lease(db, owner, clock, lost))
    try:
        # Another instance may have applied them while we waited: read again under the lease.
        current = await require_understood(db, newest)
        for migration in pending(current, found):
            if lost.is_set():
                raise SchemaError("lost the migration lease to another instance; start again")
            started = time.monotonic()
            log.info("applying migration %d: %s", migration.version, migration.name,
                     extra={"version": migration.version, "migration": migration.name})
            await migration.apply(services)
            seconds = round(time.monotonic() - started, 3)
            try:
                await db[COLLECTION].insert_one({"_id": migration.version, "name": migration.name,
                                                 "applied_at": clock.now(), "by": owner, "seconds": seconds})
            except DuplicateKeyError:
                raise SchemaError(f"migration {migration.version} was recorded by another instance while this "
                                  "one ran it (the lease lapsed); it is idempotent, but check the log") from None
            applied.append(migration.version)
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        with contextlib.suppress(PyMongoError):
            await release_lease(db, LEASE, owner)
    if applied:
        log.info("database migrated to schema version %d", applied[-1],
                 extra={"schema_version": applied[-1], "applied": applied})
    return applied
