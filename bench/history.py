"""History, scorecard and export figures at two history sizes (`python -m bench.history`).

Seeds synthetic history with the generator into a throwaway embedded database, then measures p95 of
the main GET /api/v1/audits query shapes (through the same index chooser), documents examined per
document returned (explain executionStats), the scorecard from the aggregates, and export throughput
(CSV and XLSX rows/s) with the peak Python memory of an export (tracemalloc).
Sizes: BENCH_HISTORY_SIZES=10000,200000 (default)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from bench.common import save, table
from server.app import bootstrap
from server.context import Services
from server.db import ensure_indexes
from server.embedded import EmbeddedMongo
from server.http.authz import Principal
from server.reports import aggregates as agg
from server.reports.exports import ExportRows, audit_columns, history_cursor
from server.reports.tables import cell_value
from server.settings import Settings
from server.storage import audits as audit_storage
from server.storage import reports

BRANCHES = 400
ROUNDS = int(os.environ.get("BENCH_HISTORY_ROUNDS", "20"))
EXPORT_LIMIT = 20_000


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(len(ordered) * 0.95) - 1)]


async def timed(rounds: int, call: Callable[[int], Awaitable[Any]]) -> list[float]:
    samples = []
    for i in range(rounds):
        started = time.perf_counter()
        await call(i)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def examined_ratio(explain: dict[str, Any]) -> tuple[float, str]:
    stats = explain.get("executionStats") or {}
    returned = max(1, int(stats.get("nReturned") or 0))
    examined = int(stats.get("totalDocsExamined") or 0)
    plan = str(explain.get("queryPlanner", {}).get("winningPlan", {}))
    stage = "COLLSCAN" if "COLLSCAN" in plan else ("IXSCAN" if "IXSCAN" in plan else "?")
    return examined / returned, stage


async def history_shapes(services: Services) -> dict[str, Callable[[int], dict[str, Any]]]:
    db = services.db
    branches = [b["_id"] for b in await db.branches.find({"code": {"$regex": "^GEN-B"}}, {"_id": 1}).to_list()]
    regions = sorted({b["region_id"] for b in await db.branches.find({"_id": {"$in": branches}}).to_list()})
    now = services.clock.now()
    rng = random.Random(3)

    def window(i: int) -> dict[str, Any]:
        start = now - timedelta(days=30 * (1 + i % 12))
        return audit_storage.history_bounds(start, start + timedelta(days=30), None)

    return {
        "newest": lambda i: {},
        "branch": lambda i: {"branch_id": rng.choice(branches)},
        "region+dates": lambda i: {"region_id": rng.choice(regions), **window(i)},
        "grade+released": lambda i: {"grade": rng.choice("ABCDF"), "status": "released"},
        "critical+region": lambda i: {"critical_failed": True, "region_id": rng.choice(regions)},
        "score_range": lambda i: {"score": {"$gte": 60.0, "$lte": 70.0}},
        "branch_head_view": lambda i: {"branch_id": rng.choice(branches), "status": "released"},
    }


async def measure_size(mongo_uri: str, size: int) -> dict[str, Any]:
    settings = Settings(
        mongodb_uri=mongo_uri,
        database_name=f"bench_history_{size}_{uuid.uuid4().hex[:6]}",
        seed_demo=False,
        publish_checklists=False,
        run_jobs=False,
        log_level="WARNING",
        jwt_secret="bench-history-" + "x" * 32,
        db_socket_timeout_ms=0,  # seeding batches may outlast the API's 5 s socket timeout
        # SecantusDB answers no `hello` while it materialises a large find (the aggregate rebuild reads
        # 190,000 audits), and a missed heartbeat made the driver cancel the find in flight at 200,000.
        db_heartbeat_timeout_ms=600_000,
    )
    services = bootstrap(settings, mongo_uri)
    from server.commands.generate import generate_history

    try:
        await ensure_indexes(services.db)
        started = time.perf_counter()
        summary = await generate_history(services, count=size, branches=BRANCHES, months=24, seed=size,
                                         fix_photos=False)
        seed_s = time.perf_counter() - started
        print(f"[{size}] seeded in {seed_s:.1f} s", file=sys.stderr, flush=True)
        figures: dict[str, Any] = {"size": size, "seed_seconds": round(seed_s, 1), "generated": summary, "history": {}}
        now = services.clock.now()
        page = audit_storage.history_page
        for name, make in (await history_shapes(services)).items():
            samples = await timed(ROUNDS, lambda i, make=make: page(services.db, make(i), 50, now))
            # The first window is the query a page of dense history runs (and the one that must stay narrow).
            explain = (await audit_storage.explain_history(services.db, make(0), now))[0]
            ratio, stage = examined_ratio(explain)
            figures["history"][name] = {
                "p95_ms": round(p95(samples), 2),
                "median_ms": round(statistics.median(samples), 2),
                "examined_per_returned": round(ratio, 2),
                "stage": stage,
            }
            print(f"[{size}] {name}: {json.dumps(figures['history'][name])}", file=sys.stderr, flush=True)
        print(f"[{size}] history measured", file=sys.stderr, flush=True)
        year_ago = services.clock.now() - timedelta(days=365)

        async def scorecard(i: int) -> None:
            dim = ("branch", "region", "section")[i % 3]
            scope = {"scope": "all"} if dim == "section" else {}
            rows = await reports.bucket_rows(
                services.db, dim, agg.MONTH, scope, start=year_ago, end=None, program_id=None
            )
            reports.group_summaries(rows, "key")

        samples = await timed(ROUNDS, scorecard)
        figures["scorecard"] = {"p95_ms": round(p95(samples), 2), "median_ms": round(statistics.median(samples), 2)}
        figures["export"] = await measure_exports(services)
        return figures
    finally:
        # No dropDatabase: SecantusDB deletes key by key (over 10 minutes at 50,000 audits); each size has its
        # own database, and the whole data directory is removed at the end.
        await services.client.close()


async def export_rows(services: Services, sink: Callable[[list[Any]], None]) -> int:
    who = Principal("bench", "bench", "compliance", "Bench", None, None, None, "en", "")
    rows = ExportRows(services.db, who, b"bench-key", "en")
    columns = audit_columns(who)
    sink(columns)
    count = 0
    async for audit in history_cursor(services.db, {"status": "released"}, 500, services.clock.now()):
        sink(await rows.audit_row(audit, columns))
        count += 1
        if count >= EXPORT_LIMIT:
            break
    return count


async def measure_exports(services: Services) -> dict[str, Any]:
    """CSV into a buffer flushed every 500 rows (as the endpoint does) and XLSX via a write-only workbook."""
    results: dict[str, Any] = {}

    async def csv_export() -> int:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        flushed = [0]

        def sink(row: list[Any]) -> None:
            writer.writerow(row)
            flushed[0] += 1
            if flushed[0] % 500 == 0:
                buffer.seek(0)
                buffer.truncate()

        return await export_rows(services, sink)

    async def xlsx_export() -> int:
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("audits")
        count = await export_rows(services, lambda row: sheet.append([cell_value(v) for v in row]))
        with tempfile.NamedTemporaryFile(suffix=".xlsx") as handle:
            workbook.save(handle.name)
            results.setdefault("xlsx_bytes", os.fstat(handle.fileno()).st_size)
        return count

    for name, run in (("csv", csv_export), ("xlsx", xlsx_export)):
        started = time.perf_counter()
        rows = await run()
        seconds = time.perf_counter() - started
        tracemalloc.start()
        await run()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        results[name] = {"rows": rows, "rows_per_s": round(rows / seconds), "peak_mib": round(peak / 2**20, 1)}
    return results


async def main_async(sizes: list[int]) -> dict[str, Any]:
    # On disk: at 200,000 audits the in-memory store failed an insert with "internal server error".
    data_dir = tempfile.mkdtemp(prefix="bench-history-")
    # No oplog pruning while seeding: SecantusDB prunes on every write once its oplog holds 100,000
    # entries, which made the 200,000-audit seed crawl. Nothing tails this database's change stream.
    server = EmbeddedMongo(data_dir, log_path=Path(data_dir) / "db.log",
                           extra_args=["--oplog-max-entries", "100000000", "--oplog-retention-seconds", "604800",
                                       "--cache-size", "8G"])
    server.start()
    try:
        results = []
        for size in sizes:
            results.append(await measure_size(server.uri, size))
            print(json.dumps(results[-1], default=str), file=sys.stderr, flush=True)  # kept if a later size fails
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    figures: dict[str, Any] = {"sizes": sizes, "branches": BRANCHES, "results": results}
    if len(results) >= 2:
        small, large = results[0], results[-1]
        figures["ratios_large_over_small_p95"] = {
            **{
                name: round(large["history"][name]["p95_ms"] / max(0.01, small["history"][name]["p95_ms"]), 2)
                for name in small["history"]
            },
            "scorecard": round(large["scorecard"]["p95_ms"] / max(0.01, small["scorecard"]["p95_ms"]), 2),
        }
    return figures


def report(figures: dict[str, Any]) -> str:
    lines: list[tuple[str, str]] = []
    for result in figures["results"]:
        size = result["size"]
        lines.append((f"[{size}] seed", f"{result['seed_seconds']} s ({result['generated']['findings']} findings)"))
        for name, h in result["history"].items():
            lines.append(
                (
                    f"[{size}] history {name}",
                    f"p95 {h['p95_ms']} ms, median {h['median_ms']} ms, "
                    f"examined/returned {h['examined_per_returned']} {h['stage']}",
                )
            )
        lines.append((f"[{size}] scorecard", f"p95 {result['scorecard']['p95_ms']} ms"))
        for kind in ("csv", "xlsx"):
            e = result["export"][kind]
            lines.append(
                (f"[{size}] export {kind}", f"{e['rows_per_s']} rows/s over {e['rows']} rows, peak {e['peak_mib']} MiB")
            )
    for name, ratio in (figures.get("ratios_large_over_small_p95") or {}).items():
        lines.append((f"ratio p95 {name}", str(ratio)))
    return table(lines)


def main() -> None:
    sizes = [int(s) for s in os.environ.get("BENCH_HISTORY_SIZES", "10000,200000").split(",")]
    figures = asyncio.run(main_async(sizes))
    save("history", figures)
    print(report(figures))


if __name__ == "__main__":
    main()
