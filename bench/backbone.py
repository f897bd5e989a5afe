"""Event backbone throughput and latency: outbox -> sequencer -> dispatcher -> a no-op handler,
against raw insert_many of the same documents on the same embedded server in the same run.

Run: .venv/bin/python -m bench.backbone [--events N]"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schemas.events import event
from server.app import bootstrap
from server.context import ActorInfo, Services, UnitOfWork
from server.db import Doc, ensure_indexes
from server.embedded import EmbeddedMongo
from server.handlers.base import EventHandler
from server.jobs.dispatcher import Dispatcher
from server.jobs.sequencer import Sequencer
from server.jobs.wakeups import Wakeups
from server.settings import Settings

RESULTS = Path(__file__).parent / "results" / "backbone.json"


@event("bench.happened")
class Happened(BaseModel):
    n: int
    note: str


class Probe:
    """Commit and handling times per event id (monotonic clock: durations only)."""

    def __init__(self) -> None:
        self.committed: dict[str, float] = {}
        self.handled: dict[str, float] = {}
        self.done = asyncio.Event()
        self.expected = 0

    def handler(self) -> EventHandler:
        async def noop(uow: UnitOfWork, evt: Doc) -> None:
            self.handled.setdefault(evt["_id"], time.perf_counter())
            if len(self.handled) >= self.expected:
                self.done.set()

        return EventHandler("bench-noop", frozenset({"bench.happened"}), noop)

    def latencies_ms(self) -> list[float]:
        return sorted((self.handled[i] - self.committed[i]) * 1000 for i in self.committed if i in self.handled)


async def emit_batch(services: Services, probe: Probe, first: int, size: int) -> None:
    ids: list[str] = []

    async def work(uow: UnitOfWork) -> None:
        ids.clear()
        for n in range(first, first + size):
            ids.append(uow.emit(Happened(n=n, note="x" * 40), subject_type="thing", subject_id=f"s{n % 97}"))

    await services.transact(ActorInfo.system("bench"), work)
    now = time.perf_counter()
    for event_id in ids:
        probe.committed[event_id] = now


def raw_documents(count: int) -> list[Doc]:
    """Documents shaped like outbox events, for the raw baseline."""
    return [{"_id": str(uuid.uuid4()), "type": "bench.happened", "schema_version": 1, "occurred_at": None,
             "actor": {"id": None, "role": "bench", "kind": "system"}, "subject": {"type": "thing", "id": f"s{n}"},
             "subject_ids": {"thing_id": f"s{n}"}, "payload": {"n": n, "note": "x" * 40}, "emit_index": 0}
            for n in range(count)]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


async def pipeline(services: Services, count: int, per_transaction: int, producers: int,
                   pause_s: float = 0.0, jobs_on: Services | None = None) -> dict[str, Any]:
    """Producers commit on `services`; the sequencer and dispatcher (with their default polls) run on
    `jobs_on`: the same instance, or another one that learns of the commits through the change stream."""
    probe = Probe()
    probe.expected = count
    runs_jobs = jobs_on or services
    wakeups = Wakeups(runs_jobs) if jobs_on is not None else None
    sequencer = Sequencer(runs_jobs)
    dispatcher = Dispatcher(runs_jobs, [probe.handler()])
    if wakeups is not None:
        await wakeups.start()
        await asyncio.sleep(0.5)  # the change stream is open
    await sequencer.start()
    await dispatcher.start()
    started = time.perf_counter()
    batches = list(range(0, count, per_transaction))

    async def produce(worker: int) -> None:
        for first in batches[worker::producers]:
            await emit_batch(services, probe, first, min(per_transaction, count - first))
            if pause_s:
                await asyncio.sleep(pause_s)

    await asyncio.gather(*(produce(w) for w in range(producers)))
    committed = time.perf_counter()
    await asyncio.wait_for(probe.done.wait(), 600)
    finished = time.perf_counter()
    await dispatcher.stop()
    await sequencer.stop()
    if wakeups is not None:
        await wakeups.stop()
    latencies = probe.latencies_ms()
    return {"events": count, "per_transaction": per_transaction, "producers": producers,
            "commit_s": round(committed - started, 3), "total_s": round(finished - started, 3),
            "events_per_s": round(count / (finished - started), 1),
            "latency_ms_p50": round(percentile(latencies, 50), 1),
            "latency_ms_p95": round(percentile(latencies, 95), 1),
            "latency_ms_max": round(latencies[-1], 1) if latencies else None}


async def run(count: int) -> dict[str, Any]:
    server = EmbeddedMongo(":memory:")
    server.start()
    try:
        with tempfile.TemporaryDirectory() as var:
            settings = Settings(database_name=f"bench_{uuid.uuid4().hex[:8]}", var_dir=Path(var),
                                jwt_secret="bench-" + uuid.uuid4().hex, seed_demo=False, publish_checklists=False,
                                run_jobs=False, log_level="WARNING")
            services = bootstrap(settings, server.uri)
            try:
                await ensure_indexes(services.db)
                docs = raw_documents(count)
                t0 = time.perf_counter()
                await services.db.raw_events.insert_many(docs)
                raw_s = time.perf_counter() - t0
                raw_rate = count / raw_s
                # Throughput: several producers, 50 events per transaction, as fast as they can commit.
                bulk = await pipeline(services, count, per_transaction=50, producers=4)
                # Latency: one event per transaction at a steady trickle (no backlog).
                trickle = await pipeline(services, 300, per_transaction=1, producers=1, pause_s=0.01)
                # The same, committed on one instance and handled by another's jobs.
                other = bootstrap(settings, server.uri)
                try:
                    across = await pipeline(services, 300, per_transaction=1, producers=1, pause_s=0.01,
                                            jobs_on=other)
                finally:
                    await other.client.close()
            finally:
                await services.client.close()
    finally:
        server.stop()
    return {"raw_insert_many": {"events": count, "seconds": round(raw_s, 3), "events_per_s": round(raw_rate, 1)},
            "pipeline_bulk": bulk, "pipeline_trickle": trickle, "pipeline_trickle_across_instances": across,
            "ratio_pipeline_to_raw": round(bulk["events_per_s"] / raw_rate, 3)}


def print_table(result: dict[str, Any]) -> None:
    raw, bulk, trickle = result["raw_insert_many"], result["pipeline_bulk"], result["pipeline_trickle"]
    across = result["pipeline_trickle_across_instances"]
    rows = [
        ("raw insert_many", raw["events"], raw["events_per_s"], "-", "-"),
        ("outbox->handler, 50/txn x4", bulk["events"], bulk["events_per_s"], bulk["latency_ms_p50"],
         bulk["latency_ms_p95"]),
        ("outbox->handler, 1/txn trickle", trickle["events"], trickle["events_per_s"], trickle["latency_ms_p50"],
         trickle["latency_ms_p95"]),
        ("the same, jobs on another instance", across["events"], across["events_per_s"], across["latency_ms_p50"],
         across["latency_ms_p95"]),
    ]
    print(f"{'scenario':<32}{'events':>8}{'events/s':>11}{'p50 ms':>9}{'p95 ms':>9}")
    for name, events, rate, p50, p95 in rows:
        print(f"{name:<32}{events:>8}{rate:>11}{p50!s:>9}{p95!s:>9}")
    print(f"pipeline / raw insert ratio: {result['ratio_pipeline_to_raw']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    result = asyncio.run(run(args.events))
    print_table(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
