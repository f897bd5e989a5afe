"""Wakes this instance's sequencer and dispatcher when another instance commits, through one change stream.

A commit in this process wakes them directly (`Services.outbox_signal`, `sequenced_signal`); with several
instances (`serve --workers N`, or several hosts on one MONGODB_URI) the lease holder learns of the others'
commits here, so commit-to-handler stays well under a second while the jobs otherwise poll only every few
seconds. The stream carries only inserts of other instances' pending markers (each marker names the
instance that committed it; the database leaves out this instance's own, which woke it in-process) and
changes of the sequence state, projected to what is compared here. Where the database has no change
streams the job logs it once and stops: the slow poll then carries the work across instances.

At rest the stream is one idle getMore per MAX_AWAIT_MS. That is also how long the Rust embedded server
waits for the read in flight before it can stop, when the API still runs (a supervisor's restart, a
test's): one idle getMore a second costs far less than a stop that waits ten."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from pymongo.errors import OperationFailure, PyMongoError

from server.context import Services
from server.db import Doc
from server.jobs.sequencer import own_last_seq, sequenced_signal

log = logging.getLogger("branch_audit.jobs")

# How long the database holds an idle getMore of the stream before answering it empty (see above).
MAX_AWAIT_MS = 1_000
RETRY_S = 5.0
COMMITTED = ("outbox_pending", "trail_pending")
SEQUENCED = "sequence_state"


def pipeline(instance_id: str) -> list[dict[str, Any]]:
    """Other instances' pending markers (a marker without `by`, from before markers named their instance,
    counts as another's) and every change of the sequence state, with its last seq."""
    return [
        {"$match": {"$or": [
            {"operationType": "insert", "ns.coll": {"$in": list(COMMITTED)}, "fullDocument.by": {"$ne": instance_id}},
            {"ns.coll": SEQUENCED},
        ]}},
        {"$project": {"ns": 1, "operationType": 1, "updateDescription.updatedFields.last_seq": 1,
                      "fullDocument.last_seq": 1}},
    ]


def sequenced_elsewhere(change: Doc, own_last: int | None) -> bool:
    """Whether a change of the sequence state may be news to this instance's dispatcher. The last seq only
    grows, and this instance's sequencer sets the in-process signal after each of its commits: a value
    at or below the last it committed is its own write (or an older one), already signalled."""
    moved = ((change.get("updateDescription") or {}).get("updatedFields") or {}).get("last_seq")
    if moved is None:
        moved = (change.get("fullDocument") or {}).get("last_seq")
    return own_last is None or not isinstance(moved, int) or moved > own_last


class Wakeups:
    name = "wakeups"

    def __init__(self, services: Services) -> None:
        self.services = services
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()  # only a read is in flight: nothing to finish
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        services = self.services
        sequenced = sequenced_signal(services)
        while True:
            try:
                async with await services.db.watch(pipeline(services.instance_id),
                                                   max_await_time_ms=MAX_AWAIT_MS) as stream:
                    async for change in stream:
                        if change.get("ns", {}).get("coll") != SEQUENCED:
                            services.outbox_signal.set()
                        elif sequenced_elsewhere(change, own_last_seq(services)):
                            sequenced.set()
            except OperationFailure as exc:
                if exc.code in (40573, 40324, 115, 303):  # change streams unsupported here
                    log.info("no change streams on this database: jobs rely on their slow poll",
                             extra={"error": str(exc)})
                    return
                log.warning("change stream failed; reopening", extra={"error": str(exc)})
            except PyMongoError as exc:
                log.warning("change stream failed; reopening", extra={"error": str(exc)})
            await asyncio.sleep(RETRY_S)


def jobs(services: Services) -> list[Wakeups]:
    return [Wakeups(services)]
