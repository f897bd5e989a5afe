"""The loop every polling background job runs in, and how it stops.

Stopping asks the loop to finish its pass and only cancels it when the pass does not end in time.
Cancelling a pass mid-call was the old way, and it raced: a driver call cancelled on our side could still
run on the server after `stop()` had released the job's lease, so the cancelled `acquire_lease` upsert
re-created the lease behind our back, and another instance waited out its TTL before taking the work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import PyMongoError

from server.db import Database
from server.storage.meta import acquire_lease, release_lease

log = logging.getLogger("branch_audit.jobs")

# How long stop() waits for the current pass to end by itself, then for a cancelled pass to unwind.
GRACE_S = 3.0
# How long a singleton job's lease lasts. It is renewed when half of it is gone, so a holder writes it every
# LEASE_TTL_S / 2 while it runs (every pass used to renew: 10 writes a second per job at rest, and
# SecantusDB slows every write by the retryable writes it keeps for 30 minutes). Another instance takes
# the job over at most LEASE_TTL_S + LEASE_TTL_S / 2 after its holder died.
LEASE_TTL_S = 20.0


class PollingLoop(ABC):
    """Runs `one_pass` until stopped, pausing `poll_s` (or until `wake` is set) when a pass moved nothing.

    Subclasses implement `one_pass` (returns how much moved) and may override `after_stop`."""

    name = "job"

    def __init__(self, *, poll_s: float, wake: asyncio.Event | None = None, grace_s: float = GRACE_S,
                 gather_s: float = 0.0, gather_max_s: float | None = None) -> None:
        self.poll_s = poll_s
        self.wake = wake
        self.grace_s = grace_s
        # After a wake-up, wait until no further wake-up came for `gather_s`, at most `gather_max_s` in all,
        # so commits close together share one pass: a phone's requests come tens of milliseconds apart, and
        # each pass costs several round trips. A lone commit waits `gather_s`; a steady stream of them,
        # `gather_max_s` at most.
        self.gather_s = gather_s
        self.gather_max_s = gather_s if gather_max_s is None else max(gather_s, gather_max_s)
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def stopping(self) -> bool:
        """True once stop() was called: a long pass checks this between its steps."""
        return self._stopping.is_set()

    @abstractmethod
    async def one_pass(self) -> int:
        """One round of the job's work; returns how much moved (0 means: pause before the next)."""

    async def after_stop(self) -> None:  # noqa: B027 - optional hook: most jobs hold nothing
        """Runs once the loop has ended (release leases, close clients)."""

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._stopping.set()
            done, _ = await asyncio.wait({task}, timeout=self.grace_s)
            if not done:
                # A pass stuck on an unreachable database or receiver: cancel it. What it had not committed
                # is redone by whoever runs the job next, since every job's effects are idempotent.
                task.cancel()
                done, _ = await asyncio.wait({task}, timeout=self.grace_s)
                if not done:
                    log.warning("job pass still unwinding at shutdown; leaving it", extra={"job": self.name})
        await self.after_stop()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            if self.wake is not None:
                self.wake.clear()
            try:
                moved = await self.one_pass()
            except PyMongoError as exc:
                # The database is away or refused: expected now and then, retried on the next pass.
                log.warning("job pass failed", extra={"job": self.name, "error": str(exc)})
                moved = 0
            except Exception:
                # The loop must outlive any one pass; a bug keeps its traceback in the log.
                log.exception("job pass failed", extra={"job": self.name})
                moved = 0
            if not moved:
                await self._pause()

    async def _pause(self) -> None:
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._stopping.wait())]
        if self.wake is not None:
            waiters.append(asyncio.ensure_future(self.wake.wait()))
        try:
            await asyncio.wait(waiters, timeout=self.poll_s, return_when=asyncio.FIRST_COMPLETED)
            if self.gather_s and self.wake is not None and self.wake.is_set():
                await self._gather(self.wake, waiters[0])
        finally:
            for waiter in waiters:
                waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*waiters, return_exceptions=True)

    async def _gather(self, wake: asyncio.Event, stopping: asyncio.Future[Any]) -> None:
        """Wait while wake-ups keep coming less than `gather_s` apart, up to `gather_max_s` in all (the pass
        that follows reads whatever was committed meanwhile)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.gather_max_s
        while not stopping.done():
            wake.clear()
            quiet = min(self.gather_s, deadline - loop.time())
            if quiet <= 0:
                break
            again: asyncio.Future[Any] = asyncio.ensure_future(wake.wait())
            try:
                await asyncio.wait({again, stopping}, timeout=quiet, return_when=asyncio.FIRST_COMPLETED)
            finally:
                again.cancel()
                await asyncio.wait({again})  # unwound, without raising its cancellation here
            if not wake.is_set():
                break


class Lease:
    """A singleton job's lease as this instance knows it.

    `hold` asks the database only when half the lease has run out (renewal) or, while another instance
    holds it, once per half lease (whether it was let go); in between it answers from memory. `fresh` is
    True after a pass in which the lease was (re)taken rather than renewed in time: what the job kept in
    memory about its work may be stale then, since another instance may have had the job meanwhile."""

    def __init__(self, name: str, ttl: timedelta) -> None:
        self.name = name
        self.ttl = ttl
        self.fresh = True
        self._until: datetime | None = None
        self._ask_at: datetime | None = None

    async def hold(self, db: Database, owner: str, now: datetime) -> bool:
        if self._ask_at is not None and now < self._ask_at:
            self.fresh = False
            return self._until is not None
        continuous = self._until is not None and now < self._until
        if await acquire_lease(db, self.name, owner, now, self.ttl):
            self.fresh = not continuous
            self._until, self._ask_at = now + self.ttl, now + self.ttl / 2
            return True
        self._until, self._ask_at = None, now + self.ttl / 2
        return False

    async def release(self, db: Database, owner: str) -> None:
        self._until = self._ask_at = None
        self.fresh = True
        await release_lease(db, self.name, owner)
