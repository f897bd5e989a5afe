"""The sequencer: one leader across all instances numbers committed events (`seq`, positions in
`event_log`) and seals trail entries into the hash chain (`trail_chain`), shortly after their
transactions commit. Both work from the pending markers each transaction writes, oldest first, and
only insert (plus one marker delete per transaction): see server.storage.outbox and .trail."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from server.context import Services
from server.db import Doc
from server.jobs.loop import LEASE_TTL_S, Lease, PollingLoop
from server.storage import outbox, trail

log = logging.getLogger("branch_audit.sequencer")

LEASE = "sequencer"
BATCH = 500
# How often a job that is not woken looks for work anyway: commits in this process wake it at once, and
# commits of other instances through the change stream (server.jobs.wakeups); this poll is the safety net.
SLOW_POLL_S = 5.0
# How a woken sequencer gathers commits before its pass (PollingLoop.gather_s, gather_max_s): until none came
# for GATHER_S, at most GATHER_MAX_S. A phone's audit (start, answers, photo, submit) commits four times a
# few tens of milliseconds apart, so it then costs one sequencing transaction and one dispatch instead of two
# or three of each; a lone commit reaches its handler GATHER_S later, a steady stream at most GATHER_MAX_S.
GATHER_S = 0.15
GATHER_MAX_S = 0.4
# The dispatcher is woken by the sequencer, which has already gathered: it waits only briefly.
DISPATCH_GATHER_S = 0.05


def sequenced_signal(services: Services) -> asyncio.Event:
    """Set after events get their seq, so an in-process dispatcher wakes without waiting for its poll."""
    if services.shared.events_sequenced is None:
        services.shared.events_sequenced = asyncio.Event()
    return services.shared.events_sequenced


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
            return (await trail.seal_markers(db, group, now, session))[0]

        try:
            async with services.client.start_session() as session:
                sealed += await session.with_transaction(sealing)
        except (DuplicateKeyError, OperationFailure, outbox.SequencingConflict) as exc:
            log.warning("sealing collided with another sequencer; retrying", extra={"error": str(exc)})
            break
    return sealed


@dataclass
class Sequenced:
    """What this process's sequencer last committed: the last seq and the trail head. Believed, not trusted:
    each transaction moves the state only from exactly these values, so a belief made stale by another
    instance's sequencer aborts that transaction, and the next one reads the state afresh."""

    last_seq: int | None = None
    head: tuple[int, str] | None = None


def _belief(services: Services) -> Sequenced:
    if services.shared.sequenced is None:
        services.shared.sequenced = Sequenced()
    return services.shared.sequenced


def own_last_seq(services: Services) -> int | None:
    """The last seq this process's sequencer committed, when it believes it knows (server.jobs.wakeups)."""
    return _belief(services).last_seq


async def sequence_pending(services: Services, batch: int = BATCH) -> tuple[int, bool]:
    """Number the oldest pending events and seal the oldest pending trail entries together, one
    transaction per about `batch` of each (a commit's events and trail entries usually share one);
    returns how many moved, and whether more were waiting than this pass read."""
    db = services.db
    now = services.clock.now()
    belief = _belief(services)
    event_markers = await outbox.pending_markers(db, batch)
    trail_markers = await trail.pending_markers(db, batch)
    event_groups = outbox.transaction_groups(event_markers, batch)
    trail_groups = outbox.transaction_groups(trail_markers, batch, "entry_ids")
    moved = 0
    for n in range(max(len(event_groups), len(trail_groups))):
        events = event_groups[n] if n < len(event_groups) else []
        entries = trail_groups[n] if n < len(trail_groups) else []
        known, after = Sequenced(belief.last_seq, belief.head), Sequenced(belief.last_seq, belief.head)

        async def both(session: AsyncClientSession, events: list[Doc] = events, entries: list[Doc] = entries,
                       after: Sequenced = after, known: Sequenced = known) -> int:
            count = 0
            if events:
                last = await outbox.last_event_seq(db, session) if known.last_seq is None else known.last_seq
                count = await outbox.log_markers(db, events, session, known_last=last)
                after.last_seq = last + count
            if entries:
                sealed, after.head = await trail.seal_markers(db, entries, now, session, known_head=known.head)
                count += sealed
            return count

        try:
            async with services.client.start_session() as session:
                moved += await session.with_transaction(both)
        except (DuplicateKeyError, OperationFailure, outbox.SequencingConflict) as exc:
            # Another sequencer (our lease lapsed, or a belief went stale): nothing of this attempt committed.
            belief.last_seq = belief.head = None
            log.warning("sequencing collided with another sequencer; retrying", extra={"error": str(exc)})
            return moved, True
        except BaseException:
            belief.last_seq = belief.head = None  # whether it committed is unknown
            raise
        belief.last_seq, belief.head = after.last_seq, after.head
        if events:
            sequenced_signal(services).set()
    return moved, len(event_markers) >= batch or len(trail_markers) >= batch


async def sequence_once(services: Services, batch: int = BATCH) -> int:
    """Drain everything pending right now (events and trail); the caller holds the lease."""
    total = 0
    while True:
        moved, more = await sequence_pending(services, batch)
        total += moved
        if not moved and not more:
            return total


class Sequencer(PollingLoop):
    """Sequences while it holds the lease: woken by a commit (in this process, or another instance's through
    the change stream), otherwise every `poll_s`."""

    name = "sequencer"

    def __init__(self, services: Services, *, poll_s: float = SLOW_POLL_S, lease_ttl_s: float = LEASE_TTL_S,
                 batch: int = BATCH) -> None:
        super().__init__(poll_s=poll_s, wake=services.outbox_signal, gather_s=GATHER_S, gather_max_s=GATHER_MAX_S)
        self.services = services
        self.lease = Lease(LEASE, timedelta(seconds=lease_ttl_s))
        self.batch = batch

    async def one_pass(self) -> int:
        services = self.services
        # One batch per pass, and the lease is renewed between passes, so a long backlog never outlives it.
        if not await self.lease.hold(services.db, services.instance_id, services.clock.now()):
            return 0
        moved, more = await sequence_pending(services, self.batch)
        # Drained: pause (a commit during this pass has set the wake-up, so nothing waits for the poll).
        return moved if more else 0

    async def after_stop(self) -> None:
        with contextlib.suppress(PyMongoError, TimeoutError):
            async with asyncio.timeout(self.grace_s):
                await self.lease.release(self.services.db, self.services.instance_id)


def jobs(services: Services) -> list[Sequencer]:
    return [Sequencer(services)]
