"""Reminder sweep benchmark: `python -m bench.reminders`.

1. 100,000 open rectifications, 10,000 of them due: the time sweep_once needs to send all due reminders
   (no-op channel: claim + reminder.sent event, one transaction per 50 items), as a ratio to a raw PyMongo
   loop that claims the same 10,000 documents with the same conditional update on the same server and run.
2. The cost of a sweep with nothing due at 10,000 and at 100,000 open items (it should not grow), with
   the index figures from explain.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import save, table
from server.app import bootstrap
from server.clock import FakeClock
from server.context import Services
from server.db import ensure_indexes
from server.embedded import EmbeddedMongo
from server.notify.channels import NoopChannel
from server.services.reminders import send_due_reminders as sweep_once
from server.settings import Settings

# BENCH_REMINDERS_DUE_SCALE=0.2 sends a fifth of the due reminders (on a loaded machine each write can take
# tens of milliseconds); the open-item counts stay as specified.
DUE_SCALE = float(os.environ.get("BENCH_REMINDERS_DUE_SCALE", "1"))
TOTAL = 100_000
DUE = int(10_000 * DUE_SCALE)
SMALL = 10_000
BATCH = 2_000
IDLE_RUNS = 30
NOW = datetime(2026, 11, 2, 2, tzinfo=UTC)  # 10:00 Shanghai: outside quiet hours


def progress(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


def rectification(n: int, due: bool) -> dict[str, Any]:
    due_at = NOW - timedelta(hours=1) if due else NOW + timedelta(days=7 + n % 20)
    # Due ones are at their at-due step (2); the others wait for their 48 h step.
    step = 2 if due else 0
    next_at = due_at if due else due_at - timedelta(hours=48)
    return {
        "_id": str(uuid.uuid4()), "finding_id": f"f{n}", "audit_id": f"a{n // 10}", "branch_id": f"b{n % 500}",
        "region_id": f"r{n % 10}", "program_id": None, "checklist_key": "branch-service", "checklist_version": 1,
        "item_id": "hall_clean", "section_id": "hall",
        "item_text": {"zh-CN": "大厅整洁", "en": "The hall is clean", "es": "La sala está limpia"},
        "severity": "major", "critical": False, "due_policy": None, "due_at": due_at, "timezone": "Asia/Shanghai",
        "branch_name": f"Branch {n % 500}", "assignee_id": f"u{n % 500}", "inspector_id": "inspector",
        "auditor_role": "inspector", "inspector_photo_ids": ["p1"], "photo_ids": [], "note": None,
        "submitted_by": None, "verified_by": None, "extension": None, "fixed_on_spot": False,
        "released_at": NOW - timedelta(days=3), "created_at": NOW - timedelta(days=3), "status": "open",
        "closed_at": None, "reminder_step": step, "next_reminder_at": next_at, "escalation_level": 0,
        "overdue": False, "history": [{"action": "created", "at": NOW - timedelta(days=3), "by": None,
                                       "role": "system", "from": None, "to": "open"}],
    }


async def insert(services: Services, count: int, due: int) -> list[str]:
    """Insert `count` open items of which `due` are due; returns the due ids."""
    due_ids: list[str] = []
    docs: list[dict[str, Any]] = []
    for n in range(count):
        doc = rectification(n, n < due)
        if n < due:
            due_ids.append(doc["_id"])
        docs.append(doc)
        if len(docs) == BATCH:
            await services.db.rectifications.insert_many(docs, ordered=False)
            docs = []
    if docs:
        await services.db.rectifications.insert_many(docs, ordered=False)
    # Recipients, so the sweep resolves real users (with the no-op channel nothing is written for them).
    await services.db.users.insert_many([{"_id": f"u{b}", "username": f"head{b}", "role": "branch_head",
                                          "language": "zh-CN", "active": True} for b in range(500)])
    return due_ids


async def make_due_again(services: Services, due_ids: list[str]) -> None:
    await services.db.rectifications.update_many(
        {"_id": {"$in": due_ids}},
        {"$set": {"next_reminder_at": NOW - timedelta(hours=1), "reminder_step": 2, "overdue": False}})


async def raw_claim_loop(services: Services) -> int:
    """The floor: the same index query and one conditional update (the claim the sweep makes) per due document."""
    claimed = 0
    collection = services.db.rectifications
    while True:
        batch = await collection.find({"next_reminder_at": {"$lte": NOW}}, {"history": 0}).sort(
            "next_reminder_at", 1).limit(500).to_list()
        if not batch:
            return claimed
        for doc in batch:
            won = await collection.update_one(
                {"_id": doc["_id"], "next_reminder_at": doc["next_reminder_at"],
                 "reminder_step": doc["reminder_step"]},
                {"$set": {"next_reminder_at": doc["due_at"] + timedelta(days=1), "reminder_step": 3}},
            )
            claimed += won.modified_count


async def idle_sweep_ms(services: Services) -> tuple[float, dict[str, Any]]:
    """Median wall time of a sweep with nothing due, and what the query examined."""
    timings = []
    for _ in range(IDLE_RUNS):
        started = time.perf_counter()
        sent = await sweep_once(services, NOW)
        timings.append((time.perf_counter() - started) * 1000)
        assert sent == 0
    plan = await services.db.command({"explain": {"find": "rectifications",
                                                  "filter": {"next_reminder_at": {"$lte": NOW}},
                                                  "sort": {"next_reminder_at": 1}, "limit": 500},
                                      "verbosity": "executionStats"})
    stats = plan.get("executionStats", {})
    examined = {"keys_examined": stats.get("totalKeysExamined"), "docs_examined": stats.get("totalDocsExamined"),
                "ixscan": "IXSCAN" in str(plan.get("queryPlanner", plan)),
                "collscan": "COLLSCAN" in str(plan.get("queryPlanner", plan))}
    return statistics.median(timings), examined


async def main(server: EmbeddedMongo) -> dict[str, Any]:
    settings = Settings(mongodb_uri=server.uri, database_name="bench_reminders", jwt_secret="bench-" + "x" * 32,
                        seed_demo=False, publish_checklists=False, run_jobs=False, log_level="WARNING",
                        # A busy embedded server must not look dead to the monitor (which would cancel
                        # in-flight operations), nor a slow batch be retried (duplicates).
                        db_timeout_ms=60_000, db_socket_timeout_ms=0)
    services = bootstrap(settings, server.uri, clock=FakeClock(NOW))
    services.shared.notify_channels = [NoopChannel()]
    try:
        await ensure_indexes(services.db)
        started = time.perf_counter()
        due_ids = await insert(services, TOTAL, DUE)
        insert_s = time.perf_counter() - started
        progress(f"inserted {TOTAL:,} in {insert_s:.1f} s")

        started = time.perf_counter()
        raw_claimed = await raw_claim_loop(services)
        raw_s = time.perf_counter() - started
        progress(f"raw loop claimed {raw_claimed:,} in {raw_s:.1f} s")
        assert raw_claimed == DUE, raw_claimed

        await make_due_again(services, due_ids)
        events_before = await services.db.events.count_documents({"type": "reminder.sent"})
        started = time.perf_counter()
        sent = await sweep_once(services, NOW)
        sweep_s = time.perf_counter() - started
        progress(f"sweep sent {sent:,} in {sweep_s:.1f} s")
        assert sent == DUE, sent
        events = await services.db.events.count_documents({"type": "reminder.sent"}) - events_before
        assert events == DUE, events  # exactly one reminder.sent per due item
        assert await sweep_once(services, NOW) == 0

        idle_large_ms, large_plan = await idle_sweep_ms(services)
        # The same with 10,000 open items, in a second database on the same server (deleting 90,000
        # documents would take longer than the whole benchmark on the embedded server).
        small = bootstrap(settings.model_copy(update={"database_name": "bench_reminders_small"}), server.uri,
                          clock=FakeClock(NOW))
        small.shared.notify_channels = [NoopChannel()]
        try:
            await ensure_indexes(small.db)
            await insert(small, SMALL, 0)
            assert await small.db.rectifications.count_documents({}) == SMALL
            idle_small_ms, small_plan = await idle_sweep_ms(small)
        finally:
            await small.client.close()
    finally:
        await services.client.close()

    figures: dict[str, Any] = {
        "open_items": TOTAL, "due_items": DUE, "insert_s": round(insert_s, 2),
        "sweep_s": round(sweep_s, 2), "sweep_per_item_ms": round(sweep_s / DUE * 1000, 3),
        "raw_claim_s": round(raw_s, 2), "raw_per_item_ms": round(raw_s / DUE * 1000, 3),
        "sweep_to_raw_ratio": round(sweep_s / raw_s, 2),
        "idle_sweep_ms_100k": round(idle_large_ms, 3), "idle_sweep_ms_10k": round(idle_small_ms, 3),
        "idle_ratio_100k_to_10k": round(idle_large_ms / idle_small_ms, 2),
        "idle_plan_100k": large_plan, "idle_plan_10k": small_plan,
        "notes": "sweep = claim + reminder.sent event (+ overdue event on first crossing) in one "
                 "majority/journaled transaction per 50 items, no-op channel; raw = the same conditional "
                 "update_one per item, no transaction. Embedded SecantusDB, same process and run.",
    }
    return figures


def run() -> None:
    # SIGTERM (e.g. from `timeout`) unwinds through the finally below, so the database process never outlives us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    server = EmbeddedMongo(":memory:")
    server.start()
    try:
        figures = asyncio.run(main(server))
    finally:
        server.stop()
    save("reminders", figures)
    print("Reminder sweep (embedded SecantusDB, no-op channel)")
    print(table([
        ("open items / due", f"{figures['open_items']:,} / {figures['due_items']:,}"),
        ("insert (batches of 2,000)", f"{figures['insert_s']} s"),
        ("sweep_once, all due", f"{figures['sweep_s']} s ({figures['sweep_per_item_ms']} ms/item)"),
        ("raw PyMongo claim loop", f"{figures['raw_claim_s']} s ({figures['raw_per_item_ms']} ms/item)"),
        ("sweep / raw", f"{figures['sweep_to_raw_ratio']}x"),
        ("idle sweep, 100,000 open", f"{figures['idle_sweep_ms_100k']} ms"),
        ("idle sweep, 10,000 open", f"{figures['idle_sweep_ms_10k']} ms"),
        ("idle 100k / 10k", f"{figures['idle_ratio_100k_to_10k']}x"),
        ("idle query (100k)", str(figures["idle_plan_100k"])),
    ]))


if __name__ == "__main__":
    run()
