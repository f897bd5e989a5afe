"""A phone's completed audit, end to end, on each embedded database server (issue 13's benchmark).

One completed audit is what a phone sends: PUT start, PATCH all 57 answers of branch-service in one batch,
POST one unique 1 MB JPEG, POST submit. Measured on the Rust server (secantusd-rs, when built) and on the
Python fallback (secantusd-py), each with the API as its own process (`server.cli serve`, background jobs
on, so thumbnails, sequencing and event handlers share the machine as in production):

- completed audits/s, one phone after another and 8 phones at once, on a fresh database and again with
  5,000 photos stored (seeded by direct writes); the ratio stored/fresh; p50/p95 per request;
- the same as a ratio to a raw PyMongo script doing the minimal writes of an audit on the same server in
  the same run (insert the audit, set 57 answers, insert a 1 MB chunk + its files document + the photo
  record, set it submitted: 6 writes, journaled);
- the time to list 200 audits (compliance, GET /api/v1/audits?limit=200);
- CPU at rest of API + database (one API process, then `--workers 2`), and database memory (PSS) after;
- database round trips and documents written per completed audit, request path and background work
  (measured in this process on a counted client; see `count_round_trips`).

BENCH_QUICK=1 makes a run take minutes (fewer audits, shorter rest windows, 128 KB seeded photos instead of
1 MB; BENCH_SEEDED_KB sets that size). BENCH_SERVERS=rust,python chooses the servers.
Run: .venv/bin/python -m bench.phone_audits"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from pymongo import AsyncMongoClient, InsertOne, monitoring
from pymongo.errors import PyMongoError

from bench.audits import passing_value, shipped_checklist
from bench.common import save, start_api, stop
from bench.photos import Phone, login, phone_like_jpegs
from schemas.checklist import Checklist
from server.app import bootstrap, create_app, prepare_database
from server.clock import SystemClock
from server.embedded import EmbeddedMongo, EmbeddedServer, ServerKind, free_port, rust_server_path
from server.handlers import all_handlers
from server.jobs.runner import BackgroundJob, build_jobs
from server.photos import fraud
from server.settings import Settings

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0", "false")
MB = 1024 * 1024
DATABASE = "branch_audit"
PHONES = 8
# Fresh and stored databases are measured in many short alternating rounds (each round: SEQUENTIAL audits
# one after another, then PHONES phones doing PER_PHONE audits each, on one database and then the other),
# so a change in the load of the shared machine hits both alike.
ROUNDS = 6 if QUICK else 10
SEQUENTIAL = 2 if QUICK else 4
PER_PHONE = 1 if QUICK else 2
PHOTOS_PER_TARGET = 2 + ROUNDS * (SEQUENTIAL + PHONES * PER_PHONE)
STORED_PHOTOS = 5000
SEEDED_PHOTO_BYTES = int(os.environ.get("BENCH_SEEDED_KB", "128" if QUICK else "1024")) * 1024
PHOTOS_PER_SEEDED_AUDIT = 5
COUNTED_AUDITS = 3 if QUICK else 5
REST_SETTLE_S = 8 if QUICK else 20
REST_WINDOW_S = 10 if QUICK else 30
LIST_ROUNDS = 5 if QUICK else 15
API_ENV = {
    "SEED_DEMO": "true",
    "PUBLISH_CHECKLISTS": "true",
    "RUN_JOBS": "true",
    "ARGON2_TIME_COST": "1",
    "ARGON2_MEMORY_KIB": "1024",
    "LOG_FORMAT": "text",
}
STEPS = ("start", "answers", "photo", "submit")


# --- processes: CPU and memory ---------------------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def _cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


async def cpu_at_rest(roots: list[int], seconds: float) -> float:
    """Share of one core used by these processes and their children over `seconds` (1.0 = a whole core)."""
    pids = [p for root in roots for p in _tree(root)]
    hz = os.sysconf("SC_CLK_TCK")
    before, started = _cpu_ticks(pids), time.monotonic()
    await asyncio.sleep(seconds)
    return (_cpu_ticks(pids) - before) / hz / (time.monotonic() - started)


def pss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


# --- phones ------------------------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000, 1)


class Target:
    """One API process on its own database, with what its phones measured so far, by mode."""

    def __init__(self, name: str, base: str, credentials: dict[str, Any], branch: dict[str, Any],
                 checklist: Checklist, photos: list[bytes]) -> None:
        self.name, self.base, self.credentials, self.branch, self.checklist = name, base, credentials, branch, checklist
        self.photos = iter(photos)
        self.audits: dict[str, list[float]] = {"sequential": [], f"{PHONES}_phones": []}
        self.elapsed: dict[str, float] = {"sequential": 0.0, f"{PHONES}_phones": 0.0}
        self.phones: dict[str, list[Phone]] = {"sequential": [], f"{PHONES}_phones": []}

    def phone(self) -> Phone:
        return Phone(self.base, self.credentials["inspector"], self.branch, self.checklist)

    async def sequential(self, audits: int) -> None:
        async with aiohttp.ClientSession() as session:
            phone = self.phone()
            await phone.login(session)
            started = time.perf_counter()
            self.audits["sequential"] += [await phone.audit(session, next(self.photos)) for _ in range(audits)]
            self.elapsed["sequential"] += time.perf_counter() - started
        self.phones["sequential"].append(phone)

    async def concurrent(self, per_phone: int) -> None:
        mode = f"{PHONES}_phones"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=PHONES)) as session:
            phones = [self.phone() for _ in range(PHONES)]
            for each in phones:
                await each.login(session)
            mine = [[next(self.photos) for _ in range(per_phone)] for _ in phones]

            async def run(phone: Phone, photos: list[bytes]) -> list[float]:
                return [await phone.audit(session, photo) for photo in photos]

            started = time.perf_counter()
            took = await asyncio.gather(*(run(p, m) for p, m in zip(phones, mine, strict=True)))
            self.elapsed[mode] += time.perf_counter() - started
        self.audits[mode] += [s for each in took for s in each]
        self.phones[mode] += phones

    def figures(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for mode, took in self.audits.items():
            row: dict[str, Any] = {"audits": len(took), "audits_per_s": round(len(took) / self.elapsed[mode], 2),
                                   "audit_p50_ms": _pct(took, 0.5), "audit_p95_ms": _pct(took, 0.95)}
            for step in STEPS:
                values = [s for p in self.phones[mode] for s in p.steps[step]]
                row[step] = {"p50_ms": _pct(values, 0.5), "p95_ms": _pct(values, 0.95)}
            out[mode] = row
        return out


# --- the raw PyMongo baseline ----------------------------------------------------------------------------


class RawPhones:
    """The minimal writes of one completed audit by hand, journaled: insert the audit, set its answers, insert
    a photo's chunk, files document and record, set it submitted."""

    def __init__(self, uri: str, checklist: Checklist, photo_bytes: int) -> None:
        self.client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, w="majority", journal=True,
                                                                          tz_aware=True)
        self.db = self.client["bench_raw"]
        self.now = SystemClock().now()
        self.answers = {i.id: {"value": passing_value(i), "answered_at": self.now}
                        for i in checklist.items() if i.type != "photo"}
        self.data = os.urandom(photo_bytes)
        self.count: dict[str, int] = {"sequential": 0, f"{PHONES}_phones": 0}
        self.elapsed: dict[str, float] = {"sequential": 0.0, f"{PHONES}_phones": 0.0}

    async def audit(self) -> None:
        db, now = self.db, self.now
        audit_id = str(uuid.uuid4())
        await db.audits.insert_one({"_id": audit_id, "status": "in_progress", "started_at": now, "answers": {}})
        await db.audits.update_one({"_id": audit_id}, {"$set": {"answers": self.answers}})
        file_id = f"photo:{uuid.uuid4()}"
        await db["photos.chunks"].insert_one({"files_id": file_id, "n": 0, "data": self.data})
        await db["photos.files"].insert_one({"_id": file_id, "length": len(self.data), "chunkSize": MB,
                                             "uploadDate": now})
        await db.photos.insert_one({"_id": file_id, "audit_id": audit_id, "gridfs_id": file_id})
        await db.audits.update_one({"_id": audit_id}, {"$set": {"status": "submitted", "submitted_at": now}})

    async def sequential(self, audits: int) -> None:
        started = time.perf_counter()
        for _ in range(audits):
            await self.audit()
        self.elapsed["sequential"] += time.perf_counter() - started
        self.count["sequential"] += audits

    async def concurrent(self, per_phone: int) -> None:
        async def phone() -> None:
            for _ in range(per_phone):
                await self.audit()

        started = time.perf_counter()
        await asyncio.gather(*(phone() for _ in range(PHONES)))
        self.elapsed[f"{PHONES}_phones"] += time.perf_counter() - started
        self.count[f"{PHONES}_phones"] += PHONES * per_phone

    def figures(self) -> dict[str, float]:
        return {mode: round(self.count[mode] / self.elapsed[mode], 2) for mode in self.count}

    async def close(self) -> None:
        await self.client.drop_database("bench_raw")
        await self.client.close()


# --- seeding stored photos by direct writes ----------------------------------------------------------------


async def seed_photos(uri: str, database: str, count: int, photo_bytes: int) -> dict[str, Any]:
    """`count` photos of submitted audits (PHOTOS_PER_SEEDED_AUDIT each) written straight to the database,
    cloned from the audits and photos the phones made: records, GridFS files and chunks, thumbnails."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, w="majority", journal=True, tz_aware=True)
    db = client[database]
    started = time.perf_counter()
    try:
        audit = await db.audits.find_one({"status": "submitted"})
        photo = await db.photos.find_one({"owner_type": "audit"})
        thumb_files = await db["photos.files"].find({"metadata.kind": "thumbnail"}).limit(2).to_list()
        assert audit is not None and photo is not None, "the phones made no audit to clone"
        thumb_chunks = {f["_id"]: await db["photos.chunks"].find_one({"files_id": f["_id"]}) for f in thumb_files}
        block = os.urandom(photo_bytes)
        base = audit["started_at"]
        audits = count // PHOTOS_PER_SEEDED_AUDIT
        for first in range(0, audits, 50):
            writes: dict[str, list[Any]] = {"audits": [], "photos": [], "photos.files": [], "photos.chunks": []}
            for n in range(first, min(audits, first + 50)):
                audit_id = str(uuid.uuid4())
                started_at = base - timedelta(minutes=10 * (n + 1))
                writes["audits"].append(InsertOne({
                    **audit, "_id": audit_id, "started_at": started_at, "submitted_at": started_at,
                    "history_key": f"{started_at.isoformat()}|{audit_id}"}))
                for k in range(PHOTOS_PER_SEEDED_AUDIT):
                    photo_id = str(uuid.uuid4())
                    sha = uuid.uuid4().hex * 2
                    phash = os.urandom(8).hex()
                    gridfs_id = f"photo:{photo_id}"
                    thumbs = {str(f["metadata"]["size"]): f"thumb:{photo_id}:{f['metadata']['size']}"
                              for f in thumb_files}
                    writes["photos"].append(InsertOne({
                        **photo, "_id": photo_id, "audit_id": audit_id, "owner_key": f"audit:{audit_id}",
                        "item_id": f"{photo['item_id']}", "sha256": sha, "phash": phash,
                        "phash_bands": fraud.phash_bands(phash), "gridfs_id": gridfs_id, "thumbnails": thumbs,
                        "dedup_key": f"audit:{audit_id}:{photo['item_id']}:{sha}:{k}", "variants": {}}))
                    writes["photos.files"].append(InsertOne({
                        "_id": gridfs_id, "length": photo_bytes, "chunkSize": MB, "uploadDate": started_at,
                        "filename": "seeded.jpg", "metadata": {"photo_id": photo_id, "kind": "original"}}))
                    writes["photos.chunks"].append(InsertOne(
                        {"files_id": gridfs_id, "n": 0, "data": sha.encode() + block[len(sha):]}))
                    for f in thumb_files:
                        file_id = thumbs[str(f["metadata"]["size"])]
                        writes["photos.files"].append(InsertOne({**f, "_id": file_id}))
                        chunk = thumb_chunks[f["_id"]] or {"data": b""}
                        writes["photos.chunks"].append(InsertOne({"files_id": file_id, "n": 0,
                                                                  "data": chunk["data"]}))
            for name, ops in writes.items():
                await db[name].bulk_write(ops, ordered=False)
        with contextlib.suppress(PyMongoError):
            await client.admin.command("fsync")  # a checkpoint now, not during the rounds that follow
    finally:
        await client.close()
    return {"photos": count, "audits": audits, "photo_kb": photo_bytes // 1024,
            "seconds": round(time.perf_counter() - started, 1)}


# --- listing ----------------------------------------------------------------------------------------------


async def list_200(base: str, credentials: dict[str, str]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {await login(session, base, credentials)}"}
        took, rows = [], 0
        for _ in range(LIST_ROUNDS + 1):
            started = time.perf_counter()
            async with session.get(f"{base}/api/v1/audits?limit=200", headers=headers) as resp:
                body = await resp.json()
                assert resp.status == 200, body
            took.append(time.perf_counter() - started)
            rows = len(body["items"])
    took = took[1:]  # the first warms the caches
    return {"rows": rows, "p50_ms": _pct(took, 0.5), "p95_ms": _pct(took, 0.95)}


# --- round trips and documents written, counted in this process ------------------------------------------


class Counter(monitoring.CommandListener):
    """Commands sent (round trips) and documents written, by command name."""

    def __init__(self) -> None:
        self.commands: dict[str, int] = {}
        self.targets: dict[str, int] = {}
        self.written = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        self.commands[name] = self.commands.get(name, 0) + 1
        body = event.command
        target = f"{name} {body.get(name)}" if isinstance(body.get(name), str) else name
        self.targets[target] = self.targets.get(target, 0) + 1
        if name == "insert":
            self.written += len(body.get("documents", ()))
        elif name == "update":
            self.written += len(body.get("updates", ()))
        elif name == "delete":
            self.written += len(body.get("deletes", ()))
        elif name == "findAndModify":
            self.written += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def reset(self) -> None:
        self.commands, self.targets, self.written = {}, {}, 0

    @property
    def round_trips(self) -> int:
        return sum(self.commands.values())


async def _background_done(db: Any, photo_count: int) -> bool:
    if await db.outbox_pending.find_one({}, {"_id": 1}) or await db.trail_pending.find_one({}, {"_id": 1}):
        return False
    state = await db.sequence_state.find_one({"_id": "events"})
    last = int((state or {}).get("last_seq", 0))
    cursors = {d["_id"]: d["last_seq"] async for d in db.handler_cursors.find({})}
    if any(cursors.get(h.name, 0) < last for h in all_handlers()):
        return False
    made = await db.photos.count_documents({"thumbnails.320": {"$exists": True}})
    return bool(made >= photo_count)


async def count_round_trips(uri: str, checklist: Checklist, photos: list[bytes]) -> dict[str, Any]:
    """One API and its jobs in this process, on clients that count commands: the requests' and the
    background work's round trips and documents written per completed audit (COUNTED_AUDITS of them, after
    one uncounted audit that warms every cache)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-counts-"))
    name = f"bench_counts_{uuid.uuid4().hex[:8]}"
    settings = Settings(mongodb_uri=uri, database_name=name, var_dir=tmp, jwt_secret="bench-" + "x" * 40,
                        seed_demo=False, publish_checklists=True, run_jobs=False, argon2_time_cost=1,
                        argon2_memory_kib=1024, log_level="WARNING", log_format="text")
    plain = bootstrap(settings, uri)
    requests, background = Counter(), Counter()

    def counted(listener: Counter, timeout_ms: int | None) -> AsyncMongoClient[dict[str, Any]]:
        return AsyncMongoClient(uri, w="majority", journal=True, tz_aware=True, retryWrites=True,
                                socketTimeoutMS=timeout_ms, event_listeners=[listener])

    api_client, job_client = counted(requests, 5000), counted(background, None)
    services = dataclasses.replace(plain, client=api_client, db=api_client[name])
    services.shared.mongodb_uri = uri
    job_services = dataclasses.replace(services, client=job_client, db=job_client[name], bounded=False)
    await prepare_database(services)
    from server.demo import seed_demo

    credentials = await seed_demo(services)
    app = create_app(services, start_jobs=False, prepare_data=False, close_client=False)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    jobs: list[BackgroundJob] = build_jobs(job_services)
    for job in jobs:
        await job.start()
    base = f"http://127.0.0.1:{port}"
    try:
        branch = await plain.db.branches.find_one({"code": "SH-LJZ"})
        assert branch is not None
        async with aiohttp.ClientSession() as session:
            phone = Phone(base, credentials["inspector"], branch, checklist)
            await phone.login(session)
            await phone.audit(session, photos[0])
            await _wait(functools.partial(_background_done, plain.db, 1))
            requests.reset()
            background.reset()
            for n, photo in enumerate(photos[1:1 + COUNTED_AUDITS]):
                await phone.audit(session, photo)
                await _wait(functools.partial(_background_done, plain.db, n + 2))
        figures: dict[str, Any] = {
            "audits": COUNTED_AUDITS,
            "requests_round_trips": round(requests.round_trips / COUNTED_AUDITS, 1),
            "requests_docs_written": round(requests.written / COUNTED_AUDITS, 1),
            "background_round_trips": round(background.round_trips / COUNTED_AUDITS, 1),
            "background_docs_written": round(background.written / COUNTED_AUDITS, 1),
            "requests_by_command": {k: round(v / COUNTED_AUDITS, 1) for k, v in sorted(requests.commands.items())},
            "background_by_command": {k: round(v / COUNTED_AUDITS, 1)
                                      for k, v in sorted(background.commands.items())},
            "requests_by_target": {k: round(v / COUNTED_AUDITS, 1) for k, v in sorted(requests.targets.items())},
            "background_by_target": {k: round(v / COUNTED_AUDITS, 1)
                                     for k, v in sorted(background.targets.items())},
        }
        figures["total_round_trips"] = round(figures["requests_round_trips"] + figures["background_round_trips"], 1)
        figures["total_docs_written"] = round(figures["requests_docs_written"] + figures["background_docs_written"], 1)
        return figures
    finally:
        for job in reversed(jobs):
            await job.stop()
        await runner.cleanup()
        await plain.client.drop_database(name)
        for client in (api_client, job_client, plain.client):
            await client.close()
        shutil.rmtree(tmp, ignore_errors=True)


async def _wait(condition: Any, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError("background work did not finish")
        await asyncio.sleep(0.02)


def _show(kind: str, key: str, value: Any) -> None:
    print(f"  [{kind}] {key}: {json.dumps(value)}", flush=True)


# --- one server --------------------------------------------------------------------------------------------


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else 0.0


async def _api_ready(var: Path) -> dict[str, Any]:
    credentials_file = var / "demo-credentials.json"
    deadline = time.monotonic() + 120
    while not credentials_file.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("demo credentials were not written")
        await asyncio.sleep(0.1)
    return dict(json.loads(credentials_file.read_text()))


async def start_target(name: str, uri: str, var: Path, checklist: Checklist, photos: list[bytes],
                       workers: int = 1) -> tuple[Target, subprocess.Popen[bytes]]:
    api, port = start_api(uri, var, workers=workers, extra_env={**API_ENV, "DATABASE_NAME": name})
    credentials = await _api_ready(var)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True)
    branch = await client[name].branches.find_one({"code": "SH-LJZ"})
    await client.close()
    assert branch is not None
    return Target(name, f"http://127.0.0.1:{port}", credentials, branch, checklist, photos), api


async def on_server(kind: ServerKind, checklist: Checklist, photos: list[bytes]) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-phone-{kind}-"))
    database = EmbeddedMongo(str(tmp / "db"), server=EmbeddedServer.choose(kind))
    database.start(timeout_s=120)
    assert database.process is not None
    apis: dict[str, subprocess.Popen[bytes]] = {}
    results: dict[str, Any] = {"server": kind}
    raw = RawPhones(database.uri, checklist, len(photos[0]))
    try:
        targets: dict[str, Target] = {}
        for n, name in enumerate(("fresh", "stored")):
            mine = photos[n * PHOTOS_PER_TARGET:(n + 1) * PHOTOS_PER_TARGET]
            targets[name], apis[name] = await start_target(name, database.uri, tmp / f"var-{name}", checklist, mine)
            await targets[name].sequential(2)  # warms every cache; not counted below
            targets[name] = Target(name, targets[name].base, targets[name].credentials, targets[name].branch,
                                   checklist, mine[2:])
        await raw.audit()
        print(f"  [{kind}] seeding {STORED_PHOTOS} photos", flush=True)
        results["seeded"] = await seed_photos(database.uri, "stored", STORED_PHOTOS, SEEDED_PHOTO_BYTES)
        _show(kind, "seeded", results["seeded"])
        await asyncio.sleep(REST_SETTLE_S)
        for n in range(ROUNDS):
            order = ("fresh", "stored") if n % 2 == 0 else ("stored", "fresh")
            for name in order:
                await targets[name].sequential(SEQUENTIAL)
            await raw.sequential(SEQUENTIAL)
            for name in order:
                await targets[name].concurrent(PER_PHONE)
            await raw.concurrent(PER_PHONE)
            print(f"  [{kind}] round {n + 1} of {ROUNDS} done", flush=True)
        for name, target in targets.items():
            results[name] = target.figures()
            _show(kind, name, results[name])
        results["raw"] = raw.figures()
        _show(kind, "raw", results["raw"])
        results["list_200_audits"] = await list_200(targets["stored"].base, targets["stored"].credentials["compliance"])
        _show(kind, "list_200_audits", results["list_200_audits"])
        stop(apis.pop("fresh"))
        await asyncio.sleep(REST_SETTLE_S)  # the thumbnails and handlers of the last audits finish
        roots = [apis["stored"].pid, database.process.pid]
        results["cpu_at_rest_1_worker"] = round(await cpu_at_rest(roots, REST_WINDOW_S), 4)
        _show(kind, "cpu_at_rest_1_worker", results["cpu_at_rest_1_worker"])
        results["db_pss_mb_after"] = pss_mb(database.process.pid)
        stop(apis.pop("stored"))
        _, apis["stored"] = await start_target("stored", database.uri, tmp / "var-stored", checklist, [], workers=2)
        await asyncio.sleep(REST_SETTLE_S)
        roots = [apis["stored"].pid, database.process.pid]
        results["cpu_at_rest_2_workers"] = round(await cpu_at_rest(roots, REST_WINDOW_S), 4)
        _show(kind, "cpu_at_rest_2_workers", results["cpu_at_rest_2_workers"])
        stop(apis.pop("stored"))
        print(f"  [{kind}] counting round trips", flush=True)
        results["per_audit"] = await count_round_trips(database.uri, checklist, photos[-COUNTED_AUDITS - 1:])
        _show(kind, "per_audit", results["per_audit"])
    finally:
        for api in apis.values():
            stop(api)
        with contextlib.suppress(PyMongoError):
            await raw.close()
        database.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    for name in ("fresh", "stored"):
        for mode, rate in results["raw"].items():
            results[name][mode]["ratio_to_raw"] = _ratio(results[name][mode]["audits_per_s"], rate)
    results["stored_to_fresh"] = {
        mode: _ratio(results["stored"][mode]["audits_per_s"], results["fresh"][mode]["audits_per_s"])
        for mode in ("sequential", f"{PHONES}_phones")
    }
    return results


def servers() -> list[ServerKind]:
    chosen = os.environ.get("BENCH_SERVERS")
    kinds: tuple[ServerKind, ...] = ("rust", "python")
    if chosen:
        return [k for k in kinds if k in chosen.split(",")]
    return [k for k in kinds if k == "python" or rust_server_path().is_file()]


async def run() -> dict[str, Any]:
    checklist = shipped_checklist()
    if checklist is None:
        raise SystemExit("checklists/branch-service.yaml is missing")
    started = time.perf_counter()
    photos = phone_like_jpegs(2 * PHOTOS_PER_TARGET + COUNTED_AUDITS + 1, MB, seed=1300, size=(1600, 1200))
    print(f"  {len(photos)} photos of ~1 MB made in {time.perf_counter() - started:.0f} s", flush=True)
    results: dict[str, Any] = {"measured_at": SystemClock().now().isoformat(timespec="seconds"), "quick": QUICK,
                               "checklist": f"{checklist.key} ({len(checklist.items())} items)"}
    for kind in servers():
        results[kind] = await on_server(kind, checklist, photos)
    return results


def report(results: dict[str, Any]) -> str:
    lines = []
    for kind in ("rust", "python"):
        r = results.get(kind)
        if not r:
            continue
        lines.append(f"{kind} server:")
        for state in ("fresh", "stored"):
            row = r[state]
            for mode in ("sequential", f"{PHONES}_phones"):
                m = row[mode]
                lines.append(f"  {state:<6} {mode:<12} {m['audits_per_s']:>6.2f} audits/s  audit p50 "
                             f"{m['audit_p50_ms']:.0f} ms p95 {m['audit_p95_ms']:.0f} ms  "
                             + "  ".join(f"{s} {m[s]['p50_ms']:.0f}/{m[s]['p95_ms']:.0f}" for s in STEPS))
            lines.append(f"  {state:<6} ratio to raw PyMongo: sequential {row['sequential']['ratio_to_raw']:.2f}, "
                         f"{PHONES} phones {row[f'{PHONES}_phones']['ratio_to_raw']:.2f}")
        lines.append(f"  stored/fresh: {r['stored_to_fresh']}")
        lines.append(f"  list 200 audits: {r['list_200_audits']}")
        lines.append(f"  CPU at rest: {r['cpu_at_rest_1_worker'] * 100:.1f}% of a core (1 worker), "
                     f"{r['cpu_at_rest_2_workers'] * 100:.1f}% (2 workers); DB PSS after {r['db_pss_mb_after']} MB")
        p = r["per_audit"]
        lines.append(f"  per audit: {p['requests_round_trips']} round trips / {p['requests_docs_written']} docs "
                     f"(requests) + {p['background_round_trips']} / {p['background_docs_written']} (background)")
    return "\n".join(lines)


def main() -> None:
    results = asyncio.run(run())
    save("phone_audits", results)
    print(report(results))


if __name__ == "__main__":
    main()
