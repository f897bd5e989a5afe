"""Wakes this instance's sequencer and dispatcher when another instance commits, through one change stream.

A commit in this process wakes them directly (`Services.outbox_signal`, `sequenced_signal`); with several
instances (`serve --workers N`, or several hosts on one MONGODB_URI) the lease holder learns of the others'
commits here, so commit-to-handler stays well under a second while the jobs otherwise poll only every few
seconds. The stream carries only inserts of pending markers and changes of the sequence state, projected
to their namespace, so at rest it is one idle getMore per MAX_AWAIT_MS. Where the database has no change
streams the job logs it once and stops: the slow poll then carries the work across instances."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from pymongo.errors import OperationFailure, PyMongoError

from server.context import Services
from server.jobs.sequencer import sequenced_signal

log = logging.getLogger("branch_audit.jobs")

# How long the database holds an idle getMore of the stream before answering it empty.
MAX_AWAIT_MS = 10_000
RETRY_S = 5.0
COMMITTED = ("outbox_pending", "trail_pending")
SEQUENCED = "sequence_state"
PIPELINE: list[dict[str, Any]] = [
    {"$match": {"$or": [
        {"operationType": "insert", "ns.coll": {"$in": list(COMMITTED)}},
        {"ns.coll": SEQUENCED},
    ]}},
    {"$project": {"ns": 1, "operationType": 1}},
]


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
        sequenced = sequenced_signal(self.services)
        while True:
            try:
                async with await self.services.db.watch(PIPELINE, max_await_time_ms=MAX_AWAIT_MS) as stream:
                    async for change in stream:
                        if change.get("ns", {}).get("coll") == SEQUENCED:
                            sequenced.set()
                        else:
                            self.services.outbox_signal.set()
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
