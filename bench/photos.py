"""Photo benchmark: a phone's whole audit with one unique 1 MB photo (audits per second, sequentially and
8 phones at once), upload throughput vs raw GridFS, peak server memory under 8 concurrent 10 MB uploads,
and draft-mode thumbnails vs full decode.

Run: .venv/bin/python -m bench.photos  (own embedded database; the API as a separate process on a real port,
`python -m server.cli serve` against it, so its memory is its own and read from /proc/<pid>/status)."""

from __future__ import annotations

import asyncio
import io
import json
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from gridfs.asynchronous.grid_file import AsyncGridFSBucket
from PIL import Image
from pymongo import AsyncMongoClient

from bench.audits import passing_value, shipped_checklist
from bench.common import start_api, stop
from schemas.checklist import Checklist
from server.clock import SystemClock
from server.db import Database
from server.embedded import EmbeddedMongo
from server.images.thumbnails import make_thumbnail
from server.storage.photos import GRIDFS_CHUNK_BYTES

RESULTS = Path(__file__).parent / "results" / "photos.json"
MB = 1024 * 1024
DATABASE = "branch_audit"  # the server's default database name (DATABASE_NAME is not set)
PHONES = 8
AUDITS_SEQUENTIAL = 10
AUDITS_PER_PHONE = 3
API_ENV = {
    "SEED_DEMO": "true",
    "PUBLISH_CHECKLISTS": "true",
    "RUN_JOBS": "false",  # thumbnails off the request path would share the 2 cores with what is measured
    "ARGON2_TIME_COST": "1",
    "ARGON2_MEMORY_KIB": "1024",
    "LOG_FORMAT": "text",
}


def _noise_jpeg(base: np.ndarray[Any, Any], noise: int, rng: np.random.Generator) -> bytes:
    pixels = np.clip(base + rng.integers(-noise, noise + 1, size=base.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=92)
    return out.getvalue()


def _scene(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray[Any, Any]:
    blocks = rng.integers(0, 255, size=(12, 16, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(blocks).resize(size, Image.Resampling.BICUBIC), dtype=np.int16)


def phone_like_jpegs(count: int, target_bytes: int, seed: int, size: tuple[int, int] = (4000, 3000)) -> list[bytes]:
    """`count` different JPEGs of about `target_bytes`: smooth scenes plus as much sensor-like noise as that
    takes (found by bisection on the first, reused for the rest)."""
    rng = np.random.default_rng(seed)
    base = _scene(rng, size)
    low, high = 0, 128
    noise = 64
    first = b""
    for _ in range(8):
        noise = (low + high) // 2
        first = _noise_jpeg(base, noise, rng)
        if abs(len(first) - target_bytes) < target_bytes * 0.05:
            break
        low, high = (noise, high) if len(first) < target_bytes else (low, noise)
    return [first, *(_noise_jpeg(_scene(rng, size), noise, rng) for _ in range(count - 1))]


def phone_like_jpeg(target_bytes: int, seed: int, size: tuple[int, int] = (4000, 3000)) -> bytes:
    """A JPEG of about `target_bytes`."""
    return phone_like_jpegs(1, target_bytes, seed, size)[0]


def proc_status(pid: int) -> dict[str, int]:
    """The Vm* figures of a process, in bytes."""
    figures: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Vm"):
            name, value = line.split(":", 1)
            parts = value.split()
            if parts and parts[0].isdigit():
                figures[name] = int(parts[0]) * 1024
    return figures


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux 4.0+: write 5 to clear_refs); False where not permitted."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


async def seed_audits(db: Database, count: int, auditor_id: str, branch: dict[str, Any]) -> list[str]:
    """In-progress audits written directly (for the upload-only figures)."""
    now = SystemClock().now()
    docs = [{"_id": str(uuid.uuid4()), "branch_id": branch["_id"], "region_id": branch["region_id"],
             "auditor_id": auditor_id, "auditor_role": "inspector", "status": "in_progress",
             "checklist_key": "bench", "checklist_version": 1, "started_at": now - timedelta(minutes=10),
             "checkin": {"at": now - timedelta(minutes=10)}, "assignment_id": None, "flags": [], "created_at": now}
            for _ in range(count)]
    await db.audits.insert_many(docs)
    return [d["_id"] for d in docs]


async def post_photo(session: aiohttp.ClientSession, base: str, token: str, audit_id: str, data: bytes,
                     item_id: str = "bench_item") -> int:
    form = aiohttp.FormData()
    form.add_field("item_id", item_id)
    form.add_field("file", io.BytesIO(data), filename="p.jpg", content_type="image/jpeg")
    async with session.post(f"{base}/api/v1/audits/{audit_id}/photos", data=form,
                            headers={"Authorization": f"Bearer {token}"}) as resp:
        await resp.read()
        if resp.status not in (200, 201):
            raise RuntimeError(f"upload failed: {resp.status} {await resp.text()}")
        return resp.status


async def login(session: aiohttp.ClientSession, base: str, credentials: dict[str, str]) -> str:
    async with session.post(f"{base}/api/v1/auth/login", json=credentials) as resp:
        if resp.status != 200:
            raise RuntimeError(f"login failed: {resp.status} {await resp.text()}")
        return str((await resp.json())["access_token"])


async def throughput(db: Database, session: aiohttp.ClientSession, base: str, token: str,
                     audits: list[str], photos: list[bytes]) -> dict[str, float]:
    bucket = AsyncGridFSBucket(db, bucket_name="raw_photos", chunk_size_bytes=GRIDFS_CHUNK_BYTES)
    total = sum(len(p) for p in photos) / MB
    started = time.perf_counter()
    for data in photos:
        await bucket.upload_from_stream_with_id(f"raw:{uuid.uuid4()}", "raw.jpg", io.BytesIO(data))
    raw_s = time.perf_counter() - started
    started = time.perf_counter()
    for audit_id, data in zip(audits, photos, strict=True):
        await post_photo(session, base, token, audit_id, data)
    api_s = time.perf_counter() - started
    return {"files": len(photos), "mb": round(total, 1), "raw_gridfs_mb_s": round(total / raw_s, 1),
            "api_upload_mb_s": round(total / api_s, 1), "ratio_api_to_raw": round(raw_s / api_s, 3)}


async def peak_memory(pid: int, session: aiohttp.ClientSession, base: str, token: str, audits: list[str],
                      photos: list[bytes]) -> dict[str, Any]:
    """The API process's resident memory while the uploads run at once: VmRSS polled every 5 ms and the
    kernel's high-water mark (VmHWM, reset just before), against its idle VmRSS."""
    idle = proc_status(pid)["VmRSS"]
    hwm_reset = reset_peak(pid)
    peak = idle
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc_status(pid)["VmRSS"])
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    await asyncio.gather(*(post_photo(session, base, token, a, p) for a, p in zip(audits, photos, strict=True)))
    elapsed = time.perf_counter() - started
    done.set()
    await sampler
    after = proc_status(pid)
    if hwm_reset:
        peak = max(peak, after["VmHWM"])
    return {"concurrent_uploads": len(photos), "each_mb": round(statistics.mean(len(p) for p in photos) / MB, 1),
            "peak_source": "VmHWM (reset before) and VmRSS polled every 5 ms" if hwm_reset else "VmRSS polled",
            "rss_idle_mb": round(idle / MB, 1), "rss_peak_mb": round(peak / MB, 1),
            "rss_increase_mb": round((peak - idle) / MB, 1), "rss_after_mb": round(after["VmRSS"] / MB, 1),
            "seconds": round(elapsed, 2)}


class Phone:
    """One phone doing whole audits: start (client UUID), every answer in one batch, one photo, submit."""

    def __init__(self, base: str, credentials: dict[str, str], branch: dict[str, Any], checklist: Checklist) -> None:
        self.base = base
        self.credentials = credentials
        self.branch = branch
        self.checklist = checklist
        self.photo_item = next(i.id for i in checklist.items() if i.type == "photo")
        self.headers: dict[str, str] = {}
        self.steps: dict[str, list[float]] = {"start": [], "answers": [], "photo": [], "submit": []}

    async def login(self, session: aiohttp.ClientSession) -> None:
        self.headers = {"Authorization": f"Bearer {await login(session, self.base, self.credentials)}"}

    async def audit(self, session: aiohttp.ClientSession, photo: bytes) -> float:
        """One whole audit; returns its seconds."""
        started = time.perf_counter()
        audit_id = str(uuid.uuid4())
        now = SystemClock().now().isoformat()
        body = {"branch_id": self.branch["_id"], "checklist_key": self.checklist.key, "started_at": now,
                "location": self.branch["location"]}
        await self._call(session, "start", "PUT", f"/api/v1/audits/{audit_id}", 201, json=body)
        answers = [{"item_id": i.id, "value": passing_value(i), "answered_at": now}
                   for i in self.checklist.items() if i.type != "photo"]
        await self._call(session, "answers", "PATCH", f"/api/v1/audits/{audit_id}/answers", 200, json=answers)
        form = aiohttp.FormData()
        form.add_field("item_id", self.photo_item)
        form.add_field("file", io.BytesIO(photo), filename="evidence.jpg", content_type="image/jpeg")
        await self._call(session, "photo", "POST", f"/api/v1/audits/{audit_id}/photos", 201, data=form)
        await self._call(session, "submit", "POST", f"/api/v1/audits/{audit_id}/submit", 200)
        return time.perf_counter() - started

    async def _call(
        self, session: aiohttp.ClientSession, step: str, method: str, path: str, expected: int, **kw: Any
    ) -> None:
        started = time.perf_counter()
        async with session.request(method, self.base + path, headers=self.headers, **kw) as resp:
            await resp.read()
            if resp.status != expected:
                raise RuntimeError(f"{method} {path}: {resp.status} {await resp.text()}")
        self.steps[step].append(time.perf_counter() - started)


def step_p50_ms(phones: list[Phone]) -> dict[str, float]:
    """Median milliseconds of each step of the audits these phones did."""
    return {step: round(statistics.median(s for p in phones for s in p.steps[step]) * 1000, 1)
            for step in phones[0].steps}


async def whole_audits(base: str, credentials: dict[str, str], branch: dict[str, Any], checklist: Checklist,
                       photos: list[bytes]) -> dict[str, Any]:
    """Completed audits per second, one phone after another and `PHONES` phones at once (each logs in once)."""
    sequential, concurrent = photos[:AUDITS_SEQUENTIAL], photos[AUDITS_SEQUENTIAL:]
    figures: dict[str, Any] = {"checklist": f"{checklist.key} ({len(checklist.items())} items)",
                               "photo_mb": round(statistics.mean(len(p) for p in photos) / MB, 2)}
    async with aiohttp.ClientSession() as session:
        phone = Phone(base, credentials, branch, checklist)
        await phone.login(session)
        started = time.perf_counter()
        latencies = [await phone.audit(session, photo) for photo in sequential]
        elapsed = time.perf_counter() - started
    figures["sequential"] = {"audits": len(sequential), "audits_per_s": round(len(sequential) / elapsed, 2),
                             "p50_ms": round(statistics.median(latencies) * 1000, 1),
                             "step_p50_ms": step_p50_ms([phone])}
    connector = aiohttp.TCPConnector(limit=PHONES)
    async with aiohttp.ClientSession(connector=connector) as session:
        phones = [Phone(base, credentials, branch, checklist) for _ in range(PHONES)]
        for each in phones:
            await each.login(session)

        async def run_phone(n: int) -> list[float]:
            mine = concurrent[n * AUDITS_PER_PHONE : (n + 1) * AUDITS_PER_PHONE]
            return [await phones[n].audit(session, photo) for photo in mine]

        started = time.perf_counter()
        per_phone = await asyncio.gather(*(run_phone(n) for n in range(PHONES)))
        elapsed = time.perf_counter() - started
    latencies = [s for each in per_phone for s in each]
    figures[f"{PHONES}_phones"] = {"audits": len(latencies), "audits_per_s": round(len(latencies) / elapsed, 2),
                                   "p50_ms": round(statistics.median(latencies) * 1000, 1),
                                   "step_p50_ms": step_p50_ms(phones)}
    return figures


def thumbnail_timing(runs: int = 5) -> dict[str, float]:
    photo = phone_like_jpeg(4 * MB, seed=99, size=(4000, 3000))  # 12 MP
    timings: dict[str, list[float]] = {"draft": [], "full": []}
    for _ in range(runs):
        for mode in ("draft", "full"):
            started = time.perf_counter()
            make_thumbnail(photo, 320, draft=mode == "draft")
            timings[mode].append(time.perf_counter() - started)
    draft, full = statistics.median(timings["draft"]), statistics.median(timings["full"])
    return {"megapixels": 12.0, "draft_ms": round(draft * 1000, 1), "full_decode_ms": round(full * 1000, 1),
            "ratio_draft_to_full": round(draft / full, 3)}


async def run() -> dict[str, Any]:
    checklist = shipped_checklist()
    if checklist is None:
        raise SystemExit("checklists/branch-service.yaml is missing")
    photos_1mb = phone_like_jpegs(AUDITS_SEQUENTIAL + PHONES * AUDITS_PER_PHONE, 1 * MB, seed=1000, size=(1600, 1200))
    five = phone_like_jpegs(6, 5 * MB, seed=0, size=(3200, 2400))
    ten = phone_like_jpegs(PHONES, 10 * MB, seed=100, size=(4000, 3000))
    warm = phone_like_jpeg(1 * MB, seed=500, size=(1600, 1200))
    database = EmbeddedMongo(":memory:")
    database.start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-photos-"))
    api = None
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(database.uri, w="majority", journal=True,
                                                                tz_aware=True)
    try:
        api, port = start_api(database.uri, tmp / "var", extra_env=API_ENV)
        base = f"http://127.0.0.1:{port}"
        credentials_file = tmp / "var" / "demo-credentials.json"
        deadline = time.monotonic() + 60
        while not credentials_file.exists():
            if time.monotonic() > deadline:
                raise TimeoutError("demo credentials were not written")
            await asyncio.sleep(0.1)
        credentials = json.loads(credentials_file.read_text())["inspector"]
        db = client[DATABASE]
        inspector = await db.users.find_one({"username": credentials["username"]})
        branch = await db.branches.find_one({"code": "SH-LJZ"})
        assert inspector is not None and branch is not None
        results: dict[str, Any] = {"measured_at": SystemClock().now().isoformat(timespec="seconds")}
        async with aiohttp.ClientSession() as session:
            token = await login(session, base, credentials)
            await post_photo(session, base, token, (await seed_audits(db, 1, inspector["_id"], branch))[0], warm)
            audits = await seed_audits(db, len(ten), inspector["_id"], branch)
            results["peak_memory_8x10mb"] = await peak_memory(api.pid, session, base, token, audits, ten)
            audits = await seed_audits(db, len(five), inspector["_id"], branch)
            results["throughput_5mb_jpeg"] = await throughput(db, session, base, token, audits, five)
        results["whole_audit_1mb_photo"] = await whole_audits(base, credentials, branch, checklist, photos_1mb)
        results["thumbnail_12mp"] = thumbnail_timing()
        return results
    finally:
        if api is not None:
            stop(api)
        await client.close()
        database.stop()


def main() -> None:
    results = asyncio.run(run())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'measure':<52} value")
    for section, figures in results.items():
        if isinstance(figures, dict):
            for key, value in figures.items():
                rows = value.items() if isinstance(value, dict) else [("", value)]
                for sub, figure in rows:
                    print(f"{'.'.join(part for part in (section, key, sub) if part):<52} {figure}")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
