"""The dispatcher: runs every event handler over the sequenced outbox (`event_log`, in seq order), at
least once per event, with exactly-once database effects (an idempotency marker commits with the
handler's writes).

Each handler has its own cursor (`handler_cursors`) and its own lease (`dispatch:<name>`), so several
instances share the handlers and a crashed instance's handlers are picked up when its lease expires.
A failing event is deferred (`handler_failures`) and retried with backoff while the cursor moves on;
later events of the same subject queue behind it so each subject is handled in order. After
`max_attempts` the failure is parked for an admin, and the events queued behind it are released."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from server.context import ActorInfo, Services, UnitOfWork
from server.db import UNAVAILABLE_ERRORS, Doc
from server.handlers import all_handlers
from server.handlers.base import EventHandler
from server.jobs.loop import LEASE_TTL_S, Lease, PollingLoop
from server.jobs.sequencer import DISPATCH_GATHER_S, SLOW_POLL_S, sequence_once, sequenced_signal
from server.jobs.sequencer import LEASE as SEQUENCER_LEASE
from server.storage import outbox, trail
from server.storage.meta import acquire_lease, release_lease

log = logging.getLogger("branch_audit.dispatcher")

ANY_TYPE = "*"
DUPLICATE_KEY = 11000
# A handler that found no open deferrals trusts that for this long while it keeps its lease (it makes its
# own deferrals); an admin's retry of a parked event, from any instance, is picked up within this time.
DEFERRALS_RECHECK = timedelta(seconds=30)


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for a failing handler: base * 2^(attempt-1), capped; parked after max_attempts."""

    max_attempts: int = 8
    base_s: float = 5.0
    cap_s: float = 900.0

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.cap_s, self.base_s * 2 ** max(0, attempts - 1)))


class AlreadyHandled(Exception):
    """The idempotency marker exists: this handler already committed its effects for the event."""


def wants(handler: EventHandler, event_type: str) -> bool:
    return ANY_TYPE in handler.event_types or event_type in handler.event_types


def _is_duplicate_marker(exc: Exception) -> bool:
    if isinstance(exc, DuplicateKeyError):
        return True
    if isinstance(exc, BulkWriteError):
        return any(err.get("code") == DUPLICATE_KEY for err in exc.details.get("writeErrors", []))
    return False


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


class HandlerRunner:
    """Moves one handler along the outbox; the caller holds the handler's lease."""

    def __init__(self, services: Services, handler: EventHandler, *, batch: int = 200,
                 transaction_size: int = 50, policy: RetryPolicy | None = None) -> None:
        self.services = services
        self.handler = handler
        self.batch = batch
        self.transaction_size = transaction_size
        self.policy = policy or RetryPolicy()
        self._no_deferrals_until: datetime | None = None

    async def run_once(self) -> int:
        """Retry what is due, then handle the next batch of new events; returns how much moved."""
        moved = await self.run_deferred()
        return moved + await self._run_new()

    def forget_deferrals(self) -> None:
        """What this runner remembers about open deferrals may be stale (its lease changed hands)."""
        self._no_deferrals_until = None

    async def _open_deferrals(self) -> list[Doc]:
        now = self.services.clock.now()
        if self._no_deferrals_until is not None and now < self._no_deferrals_until:
            return []
        found = await outbox.open_deferrals(self.services.db, self.handler.name)
        self._no_deferrals_until = None if found else now + DEFERRALS_RECHECK
        return found

    async def _handle(self, events: list[Doc]) -> None:
        """Run the handler over `events` in one transaction with their markers."""
        handler = self.handler

        async def work(uow: UnitOfWork) -> None:
            try:
                ids = [e["_id"] for e in events]
                await outbox.insert_markers(uow.db, handler.name, ids, uow.now, uow.session)
            except (DuplicateKeyError, BulkWriteError) as exc:
                if _is_duplicate_marker(exc):
                    raise AlreadyHandled() from None
                raise
            for event in events:
                await handler.handle(uow, event)

        await self.services.transact(ActorInfo.system(f"handler:{handler.name}"), work)

    async def _handle_one(self, event: Doc) -> Exception | None:
        """None when handled (now or before); the handler's exception otherwise."""
        try:
            await self._handle([event])
        except AlreadyHandled:
            return None
        except UNAVAILABLE_ERRORS:
            raise  # the database is away: not the event's fault, so no attempt is counted
        except Exception as exc:
            log.warning("handler failed", extra={"handler": self.handler.name, "event_id": event["_id"],
                                                 "error": _describe(exc)})
            return exc
        return None

    async def _run_new(self) -> int:
        db = self.services.db
        name = self.handler.name
        last_seq = await outbox.cursor_of(db, name)
        # All types, filtered here on the small log entries: the cursor then always moves to the end of
        # what was read, so a handler of rare types does not rescan the same stretch on every pass.
        positions = await outbox.log_after(db, last_seq, self.batch)
        if not positions:
            return 0
        runnable = await outbox.events_for(db, [p for p in positions if wants(self.handler, p["type"])])
        await self.handle_new(runnable)
        await outbox.advance_cursor(db, name, positions[-1]["seq"], self.services.clock.now())
        return len(positions)

    async def handle_new(self, runnable: list[Doc]) -> None:
        """Handle these new events (in seq order, each with its seq), queuing behind open deferrals."""
        if runnable:
            blocked = {d["subject"] for d in await self._open_deferrals()}
            for chunk in _chunks(runnable, self.transaction_size):
                await self._handle_chunk(chunk, blocked)

    async def _handle_chunk(self, events: list[Doc], blocked: set[str]) -> None:
        free = [e for e in events if outbox.subject_key(e) not in blocked]
        if len(free) == len(events) and len(events) > 1:
            # The common case in one transaction; a failure, or a chunk partly handled before a crash,
            # falls back to one event per transaction below.
            try:
                await self._handle(events)
                return
            except UNAVAILABLE_ERRORS:
                raise
            except Exception as exc:
                log.info("chunk not handled in one transaction; handling one by one",
                         extra={"handler": self.handler.name, "error": _describe(exc)})
        now = self.services.clock.now()
        for event in events:
            key = outbox.subject_key(event)
            if key in blocked:
                self._no_deferrals_until = None
                await outbox.defer(self.services.db, self.handler.name, event, outbox.STATUS_QUEUED, now)
                continue
            error = await self._handle_one(event)
            if error is not None:
                self._no_deferrals_until = None
                await outbox.defer(self.services.db, self.handler.name, event, outbox.STATUS_RETRYING, now,
                                   error=_describe(error), next_attempt_at=now + self.policy.delay(1))
                blocked.add(key)

    async def run_deferred(self) -> int:
        db = self.services.db
        deferrals = await self._open_deferrals()
        if not deferrals:
            return 0
        events = await outbox.events_by_ids(db, [d["event_id"] for d in deferrals])
        now = self.services.clock.now()
        moved = 0
        for items in _by_subject(deferrals).values():
            for deferral in items:
                if deferral["status"] == outbox.STATUS_RETRYING and _aware(deferral["next_attempt_at"]) > now:
                    break  # the head of this subject is not due: everything behind it waits
                moved += 1
                stored = events.get(deferral["event_id"])
                error = None if stored is None else await self._handle_one({**stored, "seq": deferral["seq"]})
                if error is None:
                    await outbox.resolve_deferral(db, deferral["_id"])
                    continue
                attempts = int(deferral.get("attempts", 0)) + 1
                parked = attempts >= self.policy.max_attempts
                await outbox.record_attempt_failure(
                    db, deferral, status=outbox.STATUS_PARKED if parked else outbox.STATUS_RETRYING,
                    error=_describe(error), next_attempt_at=now + self.policy.delay(attempts), now=now,
                )
                if parked:
                    log.error("event parked after repeated handler failures",
                              extra={"handler": self.handler.name, "event_id": deferral["event_id"]})
                    continue  # parked: an admin decides; the subject's later events go on
                break
        return moved


def _chunks(events: list[Doc], size: int) -> Iterable[list[Doc]]:
    for start in range(0, len(events), size):
        yield events[start:start + size]


def _by_subject(deferrals: list[Doc]) -> dict[str, list[Doc]]:
    grouped: dict[str, list[Doc]] = {}
    for deferral in deferrals:  # already in seq order
        grouped.setdefault(deferral["subject"], []).append(deferral)
    return grouped


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def lease_name(handler: EventHandler) -> str:
    return f"dispatch:{handler.name}"


class Dispatcher(PollingLoop):
    """Runs every handler whose lease this instance holds; wakes when events are sequenced.

    One pass reads the log once for all its handlers: the last seq and every cursor (one query each), one
    window of positions from the lowest cursor, the events any handler wants (one query), then each
    handler's transaction, and every cursor moved in one bulk write."""

    name = "dispatcher"

    def __init__(self, services: Services, handlers: list[EventHandler] | None = None, *,
                 poll_s: float = SLOW_POLL_S, lease_ttl_s: float = LEASE_TTL_S, batch: int = 200,
                 policy: RetryPolicy | None = None) -> None:
        super().__init__(poll_s=poll_s, wake=sequenced_signal(services), gather_s=DISPATCH_GATHER_S)
        self.services = services
        self.handlers = all_handlers() if handlers is None else handlers
        self.batch = batch
        self.runners = [HandlerRunner(services, h, batch=batch, policy=policy) for h in self.handlers]
        ttl = timedelta(seconds=lease_ttl_s)
        self.leases = {runner.handler.name: Lease(lease_name(runner.handler), ttl) for runner in self.runners}
        self._drained = True

    async def _held(self) -> list[HandlerRunner]:
        services = self.services
        held = []
        for runner in self.runners:
            if self.stopping:
                break  # stop() is waiting: leave the other handlers to the next owner
            lease = self.leases[runner.handler.name]
            if await lease.hold(services.db, services.instance_id, services.clock.now()):
                if lease.fresh:
                    runner.forget_deferrals()
                held.append(runner)
        return held

    async def run_once(self) -> int:
        """One pass over the handlers this instance can lease; returns how much moved."""
        db = self.services.db
        held = await self._held()
        if not held:
            return 0
        last = await outbox.last_event_seq(db)
        cursors = await outbox.cursors_of(db, [r.handler.name for r in held])
        moved = 0
        for runner in held:
            moved += await runner.run_deferred()
        behind = [r for r in held if cursors.get(r.handler.name, 0) < last]
        self._drained = True
        if not behind or self.stopping:
            return moved
        low = min(cursors.get(r.handler.name, 0) for r in behind)
        positions = await outbox.log_window(db, low, last, self.batch)
        self._drained = not positions or positions[-1]["seq"] >= last
        wanted = {p["_id"] for r in behind for p in positions
                  if p["seq"] > cursors.get(r.handler.name, 0) and wants(r.handler, p["type"])}
        stored = await outbox.events_by_ids(db, [p["_id"] for p in positions if p["_id"] in wanted])
        advanced: dict[str, int] = {}
        for runner in behind:
            after = cursors.get(runner.handler.name, 0)
            mine = [p for p in positions if p["seq"] > after]
            if not mine:
                continue
            await runner.handle_new([{**stored[p["_id"]], "seq": p["seq"]} for p in mine
                                     if wants(runner.handler, p["type"]) and p["_id"] in stored])
            advanced[runner.handler.name] = mine[-1]["seq"]
            moved += len(mine)
        await outbox.advance_cursors(db, advanced, self.services.clock.now())
        return moved

    async def one_pass(self) -> int:
        moved = await self.run_once()
        # Caught up: pause (events sequenced meanwhile have set the wake-up, so they wait for no poll).
        return moved if not self._drained else 0

    async def release(self) -> None:
        for runner in self.runners:
            with contextlib.suppress(PyMongoError):
                await self.leases[runner.handler.name].release(self.services.db, self.services.instance_id)

    async def after_stop(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.grace_s):
                await self.release()


async def drain(services: Services, *, max_rounds: int = 50,
                handlers: list[EventHandler] | None = None) -> None:
    """Sequence and dispatch until nothing is pending (for tests and one-shot commands).

    Handler failures are deferred, not raised: inspect `handler_failures` to see them."""
    dispatcher = Dispatcher(services, handlers)
    ttl = timedelta(seconds=10)
    try:
        for _ in range(max_rounds):
            moved = 0
            now = services.clock.now()
            if await acquire_lease(services.db, SEQUENCER_LEASE, services.instance_id, now, ttl):
                moved += await sequence_once(services)
            moved += await dispatcher.run_once()
            if moved:
                continue
            if not await _anything_pending(services):
                return
            await asyncio.sleep(0.05)  # another instance holds a lease and is working
    finally:
        await dispatcher.release()
        with contextlib.suppress(PyMongoError):
            await release_lease(services.db, SEQUENCER_LEASE, services.instance_id)


async def _anything_pending(services: Services) -> bool:
    return await outbox.anything_pending(services.db) or await trail.anything_unsealed(services.db)


def jobs(services: Services) -> list[Dispatcher]:
    return [Dispatcher(services)]
