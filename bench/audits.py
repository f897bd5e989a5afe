"""Benchmark: submitting a fully answered audit. Database round trips per submit (must not grow with the
number of items) and submit latency p50/p95 against a raw PyMongo script doing the same minimal writes.

    .venv/bin/python -m bench.audits
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web
from pymongo import AsyncMongoClient, monitoring

from bench.common import ROOT, save, table
from schemas.checklist import Checklist, Item
from server.app import create_app
from server.clock import SystemClock
from server.context import Services
from server.db import ensure_indexes
from server.demo import seed_demo
from server.embedded import EmbeddedMongo, free_port
from server.security import Passwords
from server.settings import Settings
from tests.audit_factories import add_photo, publish_checklist, sized_definition

ROUNDS = 25
SIZES = (10, 40, 80)


class CommandCounter(monitoring.CommandListener):
    """Counts commands sent to the server (one per round trip)."""

    def __init__(self) -> None:
        self.count = 0
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.count += 1
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def reset(self) -> None:
        self.count = 0
        self.names = []


def passing_value(item: Item) -> Any:
    """A value that meets the item's standard."""
    if item.type == "yes_no":
        return True
    if item.type == "rating":
        assert item.scale is not None
        return item.scale.max
    if item.type in ("number", "timer"):
        rule = item.rule()
        assert rule is not None
        return rule.value + {"<": -1, ">": 1}.get(rule.op, 0)
    passing = [o.id for o in item.options or [] if o.passing]
    if item.type == "single_choice":
        return passing[0]
    if item.type == "multi_choice":
        return passing[:1]
    return "ok" if item.type == "text" else None


def shipped_checklist() -> Checklist | None:
    path = ROOT / "checklists" / "branch-service.yaml"
    if not path.exists():
        return None
    from server.checklists.loading import load_file

    return load_file(path).checklist


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def raw_submit(client: AsyncMongoClient[dict[str, Any]], db_name: str, audit_id: str, findings: int) -> None:
    """The minimal work of a submit, by hand: read, count photos, freeze, findings, outbox, trail."""
    db = client[db_name]
    await db.raw_audits.find_one({"_id": audit_id})
    await (
        await db.photos.aggregate(
            [{"$match": {"audit_id": audit_id}}, {"$group": {"_id": "$item_id", "n": {"$sum": 1}}}]
        )
    ).to_list()
    async with client.start_session() as session, await session.start_transaction():
        await db.raw_audits.update_one(
            {"_id": audit_id}, {"$set": {"status": "submitted", "score": 100.0}}, session=session
        )
        if findings:
            await db.raw_findings.insert_many(
                [{"audit_id": audit_id, "n": n} for n in range(findings)], session=session
            )
        await db.raw_events.insert_many([{"type": "audit.submitted", "audit_id": audit_id}], session=session)
        await db.raw_trail.insert_many([{"action": "audit.submit", "audit_id": audit_id}], session=session)


async def run() -> dict[str, Any]:
    server = EmbeddedMongo(":memory:")
    server.start()
    counter = CommandCounter()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        server.uri, w="majority", journal=True, tz_aware=True, event_listeners=[counter]
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench-audits-"))
    settings = Settings(
        database_name="bench_audits",
        var_dir=tmp,
        jwt_secret="bench-" + "x" * 40,
        seed_demo=False,
        publish_checklists=False,
        run_jobs=False,
        log_level="WARNING",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
    )
    services = Services(
        settings=settings,
        client=client,
        db=client["bench_audits"],
        clock=SystemClock(),
        jwt_secret=settings.jwt_secret or "",
        passwords=Passwords(1, 1024),
    )
    runner: web.AppRunner | None = None
    try:
        await ensure_indexes(services.db)
        credentials = await seed_demo(services)
        branch = await services.db.branches.find_one({"code": "SH-LJZ"})
        assert branch is not None
        checklists: list[tuple[str, Checklist]] = []
        for size in SIZES:
            definition = sized_definition(size, f"bench-{size}")
            await publish_checklist(services.db, definition)
            checklists.append((f"generated {size} items", Checklist.model_validate(definition)))
        shipped = shipped_checklist()
        if shipped is not None:
            await publish_checklist(services.db, shipped.model_dump(mode="json", by_alias=True))
            checklists.append((f"shipped {shipped.key} ({len(shipped.items())} items)", shipped))
        app = create_app(services, start_jobs=False, prepare_data=False, close_client=False)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        base = f"http://127.0.0.1:{port}"
        rows: list[dict[str, Any]] = []
        async with ClientSession() as http:
            async with http.post(f"{base}/api/v1/auth/login", json=credentials["inspector"]) as resp:
                token = (await resp.json())["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            for label, checklist in checklists:
                rows.append(await measure(http, base, headers, services, client, counter, branch, label, checklist))
    finally:
        if runner is not None:
            await runner.cleanup()
        await client.close()
        server.stop()
    return {
        "rounds": ROUNDS,
        "rows": rows,
        "round_trips_constant": len({r["round_trips_per_submit"] for r in rows}) == 1,
    }


async def measure(
    http: ClientSession,
    base: str,
    headers: dict[str, str],
    services: Services,
    client: AsyncMongoClient[dict[str, Any]],
    counter: CommandCounter,
    branch: dict[str, Any],
    label: str,
    checklist: Checklist,
) -> dict[str, Any]:
    api_ms: list[float] = []
    raw_ms: list[float] = []
    trips: list[int] = []
    names: list[str] = []
    now = services.clock.now().isoformat()
    answers = [
        {"item_id": i.id, "value": passing_value(i), "answered_at": now}
        for i in checklist.items()
        if i.type != "photo"
    ]
    photo_items = [i.id for i in checklist.items() if i.type == "photo" or i.photo.policy == "required"]
    for _ in range(ROUNDS):
        audit_id = str(uuid.uuid4())
        body = {
            "branch_id": branch["_id"],
            "checklist_key": checklist.key,
            "started_at": now,
            "location": branch["location"],
        }
        async with http.put(f"{base}/api/v1/audits/{audit_id}", json=body, headers=headers) as resp:
            assert resp.status == 201, await resp.text()
        for item_id in photo_items:
            await add_photo(services.db, audit_id, item_id, branch["_id"])
        async with http.patch(f"{base}/api/v1/audits/{audit_id}/answers", json=answers, headers=headers) as resp:
            assert resp.status == 200, await resp.text()
        counter.reset()
        started = time.perf_counter()
        async with http.post(f"{base}/api/v1/audits/{audit_id}/submit", headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            await resp.read()
        api_ms.append((time.perf_counter() - started) * 1000)
        trips.append(counter.count)
        names = list(counter.names)
        await services.db.raw_audits.insert_one({"_id": audit_id, "status": "in_progress"})
        started = time.perf_counter()
        await raw_submit(client, "bench_audits", audit_id, 0)
        raw_ms.append((time.perf_counter() - started) * 1000)
    p50, p95 = statistics.median(api_ms), percentile(api_ms, 95)
    raw50, raw95 = statistics.median(raw_ms), percentile(raw_ms, 95)
    return {
        "checklist": label,
        "items": len(checklist.items()),
        "round_trips_per_submit": max(trips),
        "round_trip_commands": names,
        "submit_p50_ms": round(p50, 2),
        "submit_p95_ms": round(p95, 2),
        "raw_p50_ms": round(raw50, 2),
        "raw_p95_ms": round(raw95, 2),
        "ratio_p50": round(p50 / raw50, 2),
        "ratio_p95": round(p95 / raw95, 2),
    }


def main() -> None:
    figures = asyncio.run(run())
    save("audits", figures)
    print(
        f"Submit a fully answered audit (all passing), embedded SecantusDB, {figures['rounds']} submits per checklist"
    )
    header = (
        f"  {'checklist':<38} {'items':>5} {'trips':>5} {'p50 ms':>7} {'p95 ms':>7} {'raw p50':>7} "
        f"{'raw p95':>7} {'x p50':>6} {'x p95':>6}"
    )
    print(header)
    for r in figures["rows"]:
        print(
            f"  {r['checklist']:<38} {r['items']:>5} {r['round_trips_per_submit']:>5} {r['submit_p50_ms']:>7} "
            f"{r['submit_p95_ms']:>7} {r['raw_p50_ms']:>7} {r['raw_p95_ms']:>7} {r['ratio_p50']:>6} "
            f"{r['ratio_p95']:>6}"
        )
    print(
        table(
            [
                ("round trips constant across sizes", str(figures["round_trips_constant"])),
                ("commands in one submit", ", ".join(figures["rows"][0]["round_trip_commands"])),
            ]
        )
    )


if __name__ == "__main__":
    main()
