"""One point in time to read every collection at, on whichever server is behind the URI.

MongoDB offers two ways, and the servers differ in which one actually holds still:
- a snapshot session (`readConcern: snapshot` pinned at one `atClusterTime`): mongod 5.0+ replica sets.
  Not bound by the 60 s transaction lifetime, but by `minSnapshotHistoryWindowInSeconds` (300 s by default)
  for the whole read of the documents.
- one read-only transaction with `readConcern: snapshot`: every server with transactions. Measured here,
  secantusd-py and secantusd-rs both accept snapshot sessions but do not pin them (a write made after the
  first read shows in the second), while their transactions do pin one WiredTiger snapshot; they reap a
  transaction only after 60 s idle, so one that keeps reading lives as long as the backup needs.

So the backup does not guess: it probes. It writes a marker, reads it in a snapshot session, changes it,
and reads it again; if the second read still sees the first value the session holds still and is used.
Otherwise the same probe is run inside a transaction, and a server where neither holds still is refused.
Photo bytes are read outside the snapshot: GridFS chunks are written before the files document that makes
them visible and never change afterwards, so the files documents read at the point in time say exactly
which chunks belong to the backup."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import OperationFailure
from pymongo.read_concern import ReadConcern

from server.db import Client, Database

PROBE_ID = "backup.point-in-time-probe"
SNAPSHOT_SESSION = "snapshot-session"
TRANSACTION = "transaction"


class NoPointInTime(Exception):
    """The server cannot hold a read still; a consistent backup is impossible there."""


@dataclass(frozen=True)
class PointInTime:
    """A session whose reads all see the database as it was at one moment."""

    method: str
    session: AsyncClientSession


async def _stamp(db: Database) -> str:
    token = uuid.uuid4().hex
    await db.meta.update_one({"_id": PROBE_ID}, {"$set": {"token": token}}, upsert=True)
    return token


async def _holds_still(db: Database, session: AsyncClientSession) -> bool:
    """Read the probe in `session`, change it outside, read it again: True when the change is not seen."""
    first = await db.meta.find_one({"_id": PROBE_ID}, session=session)
    await _stamp(db)
    second = await db.meta.find_one({"_id": PROBE_ID}, session=session)
    return first is not None and second is not None and first.get("token") == second.get("token")


@asynccontextmanager
async def point_in_time(client: Client, db: Database, method: str | None = None) -> AsyncIterator[PointInTime]:
    """A session pinned at the moment it is opened (probed, or `method` when the caller knows better)."""
    await _stamp(db)
    if method in (None, SNAPSHOT_SESSION):
        async with client.start_session(snapshot=True, causal_consistency=False) as session:
            try:
                held = method == SNAPSHOT_SESSION or await _holds_still(db, session)
            except OperationFailure:
                held = False  # SnapshotUnavailable: a standalone server, or snapshot reads switched off
            if held:
                yield PointInTime(SNAPSHOT_SESSION, session)
                return
    async with client.start_session() as session:
        await session.start_transaction(read_concern=ReadConcern("snapshot"))
        try:
            if method != TRANSACTION and not await _holds_still(db, session):
                raise NoPointInTime("the database server holds neither a snapshot session nor a transaction "
                                    "still, so no consistent backup can be read from it")
            yield PointInTime(TRANSACTION, session)
        finally:
            if session.in_transaction:
                await session.abort_transaction()  # read-only: nothing to keep
