"""Benchmark: submitting a fully answered audit. Database round trips per submit (must not grow with the
number of items) and submit latency p50/p95 against a raw PyMongo script doing the same minimal writes.
Also one batch of every answer of the shipped checklist (PATCH .../answers): document updates per batch,
latency one phone after another and with `PHONES` phones at once.

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
PHONES = 8


class CommandCounter(monitoring.CommandListener):
    """Counts commands sent to the server (one per round trip)."""

    def __init__(self) -> None:
        self.count = 0
        self.names: list[str] = []
        self.updates = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.count += 1
        self.names.append(event.command_name)
        if event.command_name == "update":
            self.updates += len(event.command.get("updates", ()))
        elif event.command_name == "findAndModify":
            self.updates += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def reset(self) -> None:
        self.count = 0
        self.names = []
        self.updates = 0


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
        answers: dict[str, Any] | None = None
        async with ClientSession() as http:
            async with http.post(f"{base}/api/v1/auth/login", json=credentials["inspector"]) as resp:
                token = (await resp.json())["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            for label, checklist in checklists:
                rows.append(await measure(http, base, headers, services, client, counter, branch, label, checklist))
            label, checklist = checklists[-1]
            answers = await measure_answers(http, base, headers, counter, branch, label, checklist)
    finally:
        if runner is not None:
            await runner.cleanup()
        await client.close()
        server.stop()
    return {
        "rounds": ROUNDS,
        "rows": rows,
        "round_trips_constant": len({r["round_trips_per_submit"] for r in rows}) == 1,
        "answers": answers,
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


async def start_audit(
    http: ClientSession, base: str, headers: dict[str, str], branch: dict[str, Any], checklist: Checklist, now: str
) -> str:
    audit_id = str(uuid.uuid4())
    body = {
        "branch_id": branch["_id"],
        "checklist_key": checklist.key,
        "started_at": now,
        "location": branch["location"],
    }
    async with http.put(f"{base}/api/v1/audits/{audit_id}", json=body, headers=headers) as resp:
        assert resp.status == 201, await resp.text()
    return audit_id


async def patch_answers(
    http: ClientSession, base: str, headers: dict[str, str], audit_id: str, answers: list[dict[str, Any]]
) -> tuple[float, dict[str, Any]]:
    """One answers batch; its milliseconds and response."""
    started = time.perf_counter()
    async with http.patch(f"{base}/api/v1/audits/{audit_id}/answers", json=answers, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
    return (time.perf_counter() - started) * 1000, body


async def measure_answers(
    http: ClientSession,
    base: str,
    headers: dict[str, str],
    counter: CommandCounter,
    branch: dict[str, Any],
    label: str,
    checklist: Checklist,
) -> dict[str, Any]:
    """Every answer of a checklist in one batch: first delivery, replay, and `PHONES` phones at once."""
    now = SystemClock().now().isoformat()
    answers = [
        {"item_id": i.id, "value": passing_value(i), "answered_at": now} for i in checklist.items() if i.type != "photo"
    ]
    first_ms: list[float] = []
    replay_ms: list[float] = []
    updates: list[int] = []
    for _ in range(ROUNDS):
        audit_id = await start_audit(http, base, headers, branch, checklist, now)
        counter.reset()
        elapsed, body = await patch_answers(http, base, headers, audit_id, answers)
        assert body["applied"] == len(answers), body
        first_ms.append(elapsed)
        updates.append(counter.updates)
        elapsed, body = await patch_answers(http, base, headers, audit_id, answers)
        assert body["applied"] == 0, body
        replay_ms.append(elapsed)
    concurrent_ms: list[float] = []
    for _ in range(max(1, ROUNDS // PHONES)):
        audits = [await start_audit(http, base, headers, branch, checklist, now) for _ in range(PHONES)]
        done = await asyncio.gather(*(patch_answers(http, base, headers, a, answers) for a in audits))
        concurrent_ms.extend(elapsed for elapsed, _ in done)
    return {
        "checklist": label,
        "answers_per_batch": len(answers),
        "document_updates_per_batch": max(updates),
        "sequential_p50_ms": round(statistics.median(first_ms), 2),
        "sequential_p95_ms": round(percentile(first_ms, 95), 2),
        "replay_p50_ms": round(statistics.median(replay_ms), 2),
        f"{PHONES}_phones_p50_ms": round(statistics.median(concurrent_ms), 2),
        f"{PHONES}_phones_p95_ms": round(percentile(concurrent_ms, 95), 2),
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
    answers = figures["answers"]
    if answers:
        print(f"Answers batch: {answers['checklist']}, {answers['answers_per_batch']} answers in one PATCH")
        print(table([(name, str(value)) for name, value in answers.items() if name != "checklist"]))


if __name__ == "__main__":
    main()
