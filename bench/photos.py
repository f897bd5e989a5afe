"""Photo benchmark: upload throughput vs raw GridFS, peak memory under 8 concurrent 10 MB uploads,
and draft-mode thumbnails vs full decode.

Run: .venv/bin/python -m bench.photos  (own embedded database, the app on a real port)."""

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
from aiohttp import web
from PIL import Image

from server.app import bootstrap, create_app
from server.clock import SystemClock
from server.context import Services
from server.db import ensure_indexes
from server.demo import seed_demo
from server.embedded import EmbeddedMongo, free_port
from server.images.thumbnails import make_thumbnail
from server.settings import Settings
from server.storage import photos as store

RESULTS = Path(__file__).parent / "results" / "photos.json"
MB = 1024 * 1024


def phone_like_jpeg(target_bytes: int, seed: int, size: tuple[int, int] = (4000, 3000)) -> bytes:
    """A JPEG of about `target_bytes`: a smooth scene plus as much sensor-like noise as that takes."""
    rng = np.random.default_rng(seed)
    width, height = size
    blocks = rng.integers(0, 255, size=(12, 16, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(blocks).resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    low, high = 0, 128
    data = b""
    for _ in range(8):
        noise = (low + high) // 2
        pixels = np.clip(base + rng.integers(-noise, noise + 1, size=base.shape), 0, 255).astype(np.uint8)
        out = io.BytesIO()
        Image.fromarray(pixels).save(out, "JPEG", quality=92)
        data = out.getvalue()
        if abs(len(data) - target_bytes) < target_bytes * 0.05:
            break
        low, high = (noise, high) if len(data) < target_bytes else (low, noise)
    return data


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def seed_audits(services: Services, count: int, auditor_id: str, branch: dict[str, Any]) -> list[str]:
    now = services.clock.now()
    docs = [{"_id": str(uuid.uuid4()), "branch_id": branch["_id"], "region_id": branch["region_id"],
             "auditor_id": auditor_id, "auditor_role": "inspector", "status": "in_progress",
             "checklist_key": "bench", "checklist_version": 1, "started_at": now - timedelta(minutes=10),
             "checkin": {"at": now - timedelta(minutes=10)}, "assignment_id": None, "flags": [], "created_at": now}
            for _ in range(count)]
    await services.db.audits.insert_many(docs)
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


async def throughput(services: Services, session: aiohttp.ClientSession, base: str, token: str,
                     audits: list[str], photos: list[bytes]) -> dict[str, float]:
    bucket = store.bucket(services.db)
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


async def peak_memory(session: aiohttp.ClientSession, base: str, token: str, audits: list[str],
                      photos: list[bytes]) -> dict[str, float]:
    baseline = rss_bytes()
    peak = baseline
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_bytes())
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    await asyncio.gather(*(post_photo(session, base, token, a, p) for a, p in zip(audits, photos, strict=True)))
    elapsed = time.perf_counter() - started
    done.set()
    await sampler
    return {"concurrent_uploads": len(photos), "each_mb": round(len(photos[0]) / MB, 1),
            "rss_baseline_mb": round(baseline / MB, 1), "rss_peak_mb": round(peak / MB, 1),
            "rss_growth_mb": round((peak - baseline) / MB, 1), "seconds": round(elapsed, 2)}


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
    database = EmbeddedMongo(":memory:")
    database.start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-photos-"))
    settings = Settings(mongodb_uri="bench", database_name="bench_photos", var_dir=tmp, jwt_secret=uuid.uuid4().hex,
                        seed_demo=False, publish_checklists=False, run_jobs=False, log_level="WARNING",
                        log_format="text", argon2_time_cost=1, argon2_memory_kib=1024)
    services = bootstrap(settings, database.uri, clock=SystemClock())
    runner: web.AppRunner | None = None
    try:
        await ensure_indexes(services.db)
        credentials = await seed_demo(services)
        app = create_app(services, start_jobs=False, prepare_data=False, close_client=False)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        base = f"http://127.0.0.1:{port}"
        inspector = await services.db.users.find_one({"username": credentials["inspector"]["username"]})
        branch = await services.db.branches.find_one({"code": "SH-LJZ"})
        assert inspector is not None and branch is not None
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{base}/api/v1/auth/login", json=credentials["inspector"]) as resp:
                token = (await resp.json())["access_token"]
            five = [phone_like_jpeg(5 * MB, seed=i, size=(3200, 2400)) for i in range(6)]
            ten = [phone_like_jpeg(10 * MB, seed=100 + i, size=(4000, 3000)) for i in range(8)]
            await post_photo(session, base, token, (await seed_audits(services, 1, inspector["_id"], branch))[0],
                             phone_like_jpeg(1 * MB, seed=500, size=(1600, 1200)))  # warm-up
            results: dict[str, Any] = {"measured_at": SystemClock().now().isoformat(timespec="seconds")}
            audits = await seed_audits(services, len(five), inspector["_id"], branch)
            results["throughput_5mb_jpeg"] = await throughput(services, session, base, token, audits, five)
            audits = await seed_audits(services, len(ten), inspector["_id"], branch)
            results["peak_memory_8x10mb"] = await peak_memory(session, base, token, audits, ten)
            results["thumbnail_12mp"] = thumbnail_timing()
        return results
    finally:
        if runner is not None:
            await runner.cleanup()
        await services.client.drop_database(settings.database_name)
        await services.client.close()
        database.stop()


def main() -> None:
    results = asyncio.run(run())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'measure':<44} value")
    for section, figures in results.items():
        if isinstance(figures, dict):
            for key, value in figures.items():
                print(f"{section + '.' + key:<44} {value}")
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
