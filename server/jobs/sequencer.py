"""The sequencer: one leader across all instances numbers committed events (`seq`, positions in
`event_log`) and seals trail entries into the hash chain (`trail_chain`), shortly after their
transactions commit. Both work from the pending markers each transaction writes, oldest first, and
only insert (plus one marker delete per transaction): see server.storage.outbox and .trail."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from server.context import Services
from server.db import Doc
from server.jobs.loop import PollingLoop
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
    """Log the oldest pending transactions' events at the next positions, about `batch` events per
    transaction; returns how many were numbered."""
    db = services.db
    numbered = 0
    for group in outbox.transaction_groups(await outbox.pending_markers(db, batch), batch):

        async def number(session: AsyncClientSession, group: list[Doc] = group) -> int:
            return await outbox.log_markers(db, group, session)

        try:
            async with services.client.start_session() as session:
                numbered += await session.with_transaction(number)
        except (DuplicateKeyError, OperationFailure, outbox.SequencingConflict) as exc:
            # Another leader (our lease lapsed) logged concurrently: the unique seq / _id refused the
            # overlap, or the markers were gone. Nothing of this attempt committed.
            log.warning("sequencing collided with another sequencer; retrying", extra={"error": str(exc)})
            break
        sequenced_signal(services).set()
    return numbered


async def seal_trail(services: Services, batch: int = BATCH) -> int:
    """Seal the oldest pending trail entries into the hash chain, about `batch` per transaction."""
    db = services.db
    now = services.clock.now()
    sealed = 0
    for group in outbox.transaction_groups(await trail.pending_markers(db, batch), batch, "entry_ids"):

        async def sealing(session: AsyncClientSession, group: list[Doc] = group) -> int:
            return await trail.seal_markers(db, group, now, session)

        try:
            async with services.client.start_session() as session:
                sealed += await session.with_transaction(sealing)
        except (DuplicateKeyError, OperationFailure, outbox.SequencingConflict) as exc:
            log.warning("sealing collided with another sequencer; retrying", extra={"error": str(exc)})
            break
    return sealed


async def sequence_once(services: Services, batch: int = BATCH) -> int:
    """Drain everything pending right now (events and trail); the caller holds the lease."""
    total = 0
    while True:
        numbered = await sequence_events(services, batch)
        sealed = await seal_trail(services, batch)
        total += numbered + sealed
        if not numbered and not sealed:  # batches are whole transactions, so a short one is not the end
            return total


class Sequencer(PollingLoop):
    """Polls (or wakes on a commit in this process) and sequences while it holds the lease."""

    name = "sequencer"

    def __init__(self, services: Services, *, poll_s: float = 0.1, lease_ttl_s: float = 10.0,
                 batch: int = BATCH) -> None:
        super().__init__(poll_s=poll_s, wake=services.outbox_signal)
        self.services = services
        self.lease_ttl = timedelta(seconds=lease_ttl_s)
        self.batch = batch

    async def one_pass(self) -> int:
        services = self.services
        # One batch per lease renewal, so a long backlog never outlives the lease.
        if not await acquire_lease(services.db, LEASE, services.instance_id, services.clock.now(), self.lease_ttl):
            return 0
        return await sequence_events(services, self.batch) + await seal_trail(services, self.batch)

    async def after_stop(self) -> None:
        with contextlib.suppress(PyMongoError, TimeoutError):
            async with asyncio.timeout(self.grace_s):
                await release_lease(self.services.db, LEASE, self.services.instance_id)


def jobs(services: Services) -> list[Sequencer]:
    return [Sequencer(services)]
