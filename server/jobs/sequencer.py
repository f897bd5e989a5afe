"""The sequencer: one leader across all instances numbers committed events (`seq`) and seals trail
entries into the hash chain, shortly after their transactions commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from server.context import Services
from server.storage import outbox, trail
from server.storage.meta import acquire_lease, release_lease

log = logging.getLogger("branch_audit.sequencer")

LEASE = "sequencer"
BATCH = 500


def sequenced_signal(services: Services) -> asyncio.Event:
    """Set after events get their seq, so an in-process dispatcher wakes without waiting for its poll."""
    found = services.extras.get("events_sequenced")
    if not isinstance(found, asyncio.Event):
        found = asyncio.Event()
        services.extras["events_sequenced"] = found
    return found


async def sequence_events(services: Services, batch: int = BATCH) -> int:
    """Number one batch of pending events (in commit-time order); returns how many were numbered."""
    db = services.db
    pending = await outbox.pending_events(db, batch)
    if not pending:
        return 0
    ids = [d["_id"] for d in pending]

    async def number(session: AsyncClientSession) -> int:
        first = await outbox.last_event_seq(db, session) + 1
        numbered = await outbox.assign_event_seqs(db, ids, first, session)
        # Any id another sequencer numbered meanwhile leaves a gap: seq is ordered, not dense.
        await outbox.set_last_event_seq(db, first + len(ids) - 1, session)
        return numbered

    try:
        async with services.client.start_session() as session:
            count = await session.with_transaction(number)
    except (DuplicateKeyError, OperationFailure) as exc:
        # Another leader (our lease lapsed) numbered concurrently; the unique index refused the overlap.
        log.warning("sequencing collided with another sequencer; retrying", extra={"error": str(exc)})
        return 0
    if count:
        sequenced_signal(services).set()
    return count


async def seal_trail(services: Services, batch: int = BATCH) -> int:
    """Seal one batch of pending trail entries into the hash chain."""
    now = services.clock.now()

    async def sealing(session: AsyncClientSession) -> int:
        return await trail.seal_pending(services.db, batch, now, session)

    try:
        async with services.client.start_session() as session:
            return await session.with_transaction(sealing)
    except (DuplicateKeyError, OperationFailure) as exc:
        log.warning("sealing collided with another sequencer; retrying", extra={"error": str(exc)})
        return 0


async def sequence_once(services: Services, batch: int = BATCH) -> int:
    """Drain everything pending right now (events and trail); the caller holds the lease."""
    total = 0
    while True:
        numbered = await sequence_events(services, batch)
        sealed = await seal_trail(services, batch)
        total += numbered + sealed
        if numbered < batch and sealed < batch:
            return total


class Sequencer:
    """Polls (or wakes on a commit in this process) and sequences while it holds the lease."""

    name = "sequencer"

    def __init__(self, services: Services, *, poll_s: float = 0.1, lease_ttl_s: float = 10.0,
                 batch: int = BATCH) -> None:
        self.services = services
        self.poll_s = poll_s
        self.lease_ttl = timedelta(seconds=lease_ttl_s)
        self.batch = batch
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(PyMongoError):
            await release_lease(self.services.db, LEASE, self.services.instance_id)

    async def _run(self) -> None:
        services = self.services
        signal = services.outbox_signal
        while True:
            signal.clear()
            try:
                # One batch per lease renewal, so a long backlog never outlives the lease.
                if await acquire_lease(services.db, LEASE, services.instance_id, services.clock.now(),
                                       self.lease_ttl):
                    numbered = await sequence_events(services, self.batch)
                    sealed = await seal_trail(services, self.batch)
                    if numbered >= self.batch or sealed >= self.batch:
                        continue
            except PyMongoError as exc:
                log.warning("sequencer pass failed", extra={"error": str(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(signal.wait(), self.poll_s)


def jobs(services: Services) -> list[Sequencer]:
    return [Sequencer(services)]
