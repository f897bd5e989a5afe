"""Backup and restore on the embedded database: MB/s and peak memory of `branch-audit backup create` and
`backup restore` for a database holding N photos (each an original and two thumbnails in GridFS), the
phones' p95 while a backup runs against the same phones without one, and a raw PyMongo read of every
document on the same server as the reference.

`python -m bench.backup` runs 500 photos (quick); `--photos 5000` is the figure the README reports."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient

from bench.common import ROOT, save, table
from bench.load import Server, prepare
from bench.phones import Behaviour, Ledger, PhotoMaker, Stats, World, run_personas
from server.embedded import EmbeddedMongo, EmbeddedServer
from server.storage.photos import BUCKET, GRIDFS_CHUNK_BYTES

ORIGINAL_BYTES = 300 * 1024
THUMBNAIL_BYTES = (48 * 1024, 9 * 1024)
SEED_BATCH = 50


def seed_photos(uri: str, count: int) -> int:
    """`count` photos' bytes and metadata, written straight to the database; returns the bytes stored."""
    client: MongoClient[dict[str, Any]] = MongoClient(uri, w="majority", journal=True)
    db = client["branch_audit"]
    stored = 0
    now = datetime.now(UTC)
    try:
        for start in range(0, count, SEED_BATCH):
            chunks, files, photos = [], [], []
            for _ in range(start, min(count, start + SEED_BATCH)):
                photo_id = str(uuid.uuid4())
                ids = {}
                for kind, size in (("original", ORIGINAL_BYTES), ("320", THUMBNAIL_BYTES[1]),
                                   ("1280", THUMBNAIL_BYTES[0])):
                    file_id = f"{kind}:{photo_id}"
                    data = os.urandom(size)  # JPEG does not compress; neither does this
                    chunks += [{"files_id": file_id, "n": n, "data": data[o:o + GRIDFS_CHUNK_BYTES]}
                               for n, o in enumerate(range(0, size, GRIDFS_CHUNK_BYTES))]
                    files.append({"_id": file_id, "length": size, "chunkSize": GRIDFS_CHUNK_BYTES,
                                  "uploadDate": now, "filename": f"{file_id}.jpg", "metadata": {"kind": kind}})
                    ids[kind] = file_id
                    stored += size
                photos.append({"_id": photo_id, "owner_type": "audit", "audit_id": f"bench-{photo_id}",
                               "item_id": "lobby_photo", "gridfs_id": ids["original"], "size": ORIGINAL_BYTES,
                               "thumbnails": {"320": ids["320"], "1280": ids["1280"]}, "purged": False,
                               "uploaded_at": now, "dedup_key": f"bench:{photo_id}", "flags": []})
            db[f"{BUCKET}.chunks"].insert_many(chunks)
            db[f"{BUCKET}.files"].insert_many(files)
            db.photos.insert_many(photos)
    finally:
        client.close()
    return stored


def raw_read(uri: str) -> tuple[int, float]:
    """Every document of every collection read as raw BSON and dropped: (bytes, seconds)."""
    client: MongoClient[RawBSONDocument] = MongoClient(
        uri, document_class=RawBSONDocument, connectTimeoutMS=600_000)
    db = client.get_database("branch_audit", codec_options=CodecOptions(document_class=RawBSONDocument))
    started = time.perf_counter()
    total = 0
    try:
        for name in db.list_collection_names():
            for doc in db[name].find({}, batch_size=64):
                total += len(doc.raw)
    finally:
        client.close()
    return total, time.perf_counter() - started


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_command(argv: list[str], env: dict[str, str]) -> tuple[dict[str, Any], float, float]:
    """A branch-audit command: (its last JSON line, seconds, peak RSS in MB read while it ran)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", *argv], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    peak = [0.0]

    def watch() -> None:
        while proc.poll() is None:
            found = peak_rss_mb(proc.pid)
            if found:
                peak[0] = max(peak[0], found)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, _ = proc.communicate()
    watcher.join()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"branch-audit {' '.join(argv)} exited {proc.returncode}")
    return json.loads(out.decode().strip().splitlines()[-1]), seconds, peak[0]


def p95(stats: Stats) -> dict[str, float | None]:
    every = sorted(x for values in stats.latencies.values() for x in values)
    rows = {r["operation"]: r["p95_ms"] for r in stats.rows()}
    rows["all requests"] = round(every[min(len(every) - 1, int(len(every) * 0.95))] * 1000, 1) if every else None
    return rows


async def phones_while(server: Server, accounts: Any, seconds: float, work: Any | None) -> tuple[Stats, Any]:
    """Phones for `seconds` (or until `work`, a blocking callable run in a thread, is done)."""
    branches, phones, heads, reviewers = accounts
    behaviour = Behaviour(replay_p=0.0, drop_p=0.0)
    photos = PhotoMaker(sizes_mb=(1.2,))
    if work is None:  # the same shape as with a backup: a head start, then the measured stretch

        def work() -> None:
            time.sleep(seconds)

    stats = Stats()
    world = World(server.base, branches, photos, Ledger(), stats, behaviour, time.monotonic() + 36_000)
    playing = asyncio.create_task(run_personas(world, phones, heads, reviewers))
    await asyncio.sleep(3)  # the phones are logged in and mid-visit when the backup starts
    result = await asyncio.to_thread(work)
    world.stop_event.set()
    await playing
    stats.stop()
    return stats, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backup", description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--phones", type=int, default=4)
    parser.add_argument("--pace", type=float, default=20.0, help="MB/s of the paced backup (0: none)")
    args = parser.parse_args(argv)
    return asyncio.run(run(args.photos, args.phones, args.pace))


async def run(photo_count: int, phone_count: int, pace: float) -> int:
    work_dir = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    server = Server(work_dir / "var")
    server.start()
    kind = EmbeddedServer.from_settings().kind
    figures: dict[str, Any] = {"photos": photo_count, "phones": phone_count, "embedded_server": kind}
    try:
        state = server.run_state()
        uri = f"mongodb://127.0.0.1:{state['db_port']}/?directConnection=true"
        seeded = time.perf_counter()
        figures["photo_bytes_stored"] = await asyncio.to_thread(seed_photos, uri, photo_count)
        figures["seed_s"] = round(time.perf_counter() - seeded, 1)
        raw_bytes, raw_s = await asyncio.to_thread(raw_read, uri)
        figures["raw_read_mb_s"] = round(raw_bytes / raw_s / 1e6, 1)
        accounts = await prepare(server, phones=phone_count)
        env = {**os.environ, "VAR_DIR": str(server.var_dir), "LOG_LEVEL": "WARNING"}
        env.pop("MONGODB_URI", None)
        db_rss_before = rss_mb(state["db_pid"])
        backup_path = work_dir / "backup"

        def take() -> tuple[dict[str, Any], float, float]:
            return run_command(["backup", "create", str(backup_path)], env)

        during, (made, backup_s, backup_peak) = await phones_while(server, accounts, 0, take)
        db_rss_after = rss_mb(state["db_pid"])
        manifest = json.loads((backup_path / "manifest.json").read_text())
        raw_total = sum(c["raw_bytes"] for c in manifest["collections"])
        figures.update({
            "backup_s": round(backup_s, 1), "backup_bytes_on_disk": made["bytes"], "backup_raw_bytes": raw_total,
            "backup_mb_s": round(raw_total / backup_s / 1e6, 1), "backup_peak_rss_mb": round(backup_peak, 1),
            "backup_vs_raw_read": round(raw_total / backup_s / (raw_bytes / raw_s), 2),
            "snapshot_method": made["snapshot_method"],
            "db_rss_mb_before_after_backup": [db_rss_before, db_rss_after],
        })
        figures["p95_ms_during_backup"] = p95(during) if during else None
        baseline, _ = await phones_while(server, accounts, max(10.0, backup_s), None)
        figures["p95_ms_without_backup"] = p95(baseline)
        figures["requests_during_backup"] = sum(sum(c.values()) for c in during.outcomes.values()) if during else 0
        figures["requests_without_backup"] = sum(sum(c.values()) for c in baseline.outcomes.values())
        # The same backup with no phones: what the backup costs by itself, apart from the machine's load.
        _, idle_s, idle_peak = run_command(["backup", "create", str(work_dir / "backup-idle")], env)
        await asyncio.to_thread(shutil.rmtree, work_dir / "backup-idle", True)
        figures.update({"backup_idle_s": round(idle_s, 1), "backup_idle_mb_s": round(raw_total / idle_s / 1e6, 1),
                        "backup_idle_vs_raw_read": round(raw_total / idle_s / (raw_bytes / raw_s), 2),
                        "backup_idle_peak_rss_mb": round(idle_peak, 1)})
        # Paced: the photo bytes held to `pace` MB/s, with the phones working.
        if pace > 0:

            def paced() -> tuple[dict[str, Any], float, float]:
                return run_command(["backup", "create", str(work_dir / "backup-paced"), "--max-mb-s", str(pace)],
                                   env)

            paced_stats, (_, paced_s, _) = await phones_while(server, accounts, 0, paced)
            await asyncio.to_thread(shutil.rmtree, work_dir / "backup-paced", True)
            figures.update({"paced_max_mb_s": pace, "paced_backup_s": round(paced_s, 1),
                            "p95_ms_during_paced_backup": p95(paced_stats)})
    finally:
        server.stop()

    target = EmbeddedMongo(str(work_dir / "restored-db"), log_path=work_dir / "restored-db.log")
    target.start()
    try:
        env = {**os.environ, "MONGODB_URI": target.uri, "JWT_SECRET": "bench-secret-" + "x" * 40,
               "LOG_LEVEL": "WARNING"}
        restored, restore_s, restore_peak = run_command(["backup", "restore", str(backup_path)], env)
        figures.update({"restore_ok": restored["ok"], "restore_s": round(restore_s, 1),
                        "restore_mb_s": round(raw_total / restore_s / 1e6, 1),
                        "restore_peak_rss_mb": round(restore_peak, 1)})
    finally:
        target.stop()
        await asyncio.to_thread(shutil.rmtree, work_dir, True)

    during_p95 = (figures["p95_ms_during_backup"] or {}).get("all requests")
    rows = [
        ("photos (original + 2 thumbnails)", f"{photo_count} ({figures['photo_bytes_stored'] / 1e6:.0f} MB)"),
        ("backup", f"{figures['backup_mb_s']} MB/s ({figures['backup_raw_bytes'] / 1e6:.0f} MB in "
                   f"{figures['backup_s']} s, {figures['snapshot_method']}), "
                   f"peak RSS {figures['backup_peak_rss_mb']} MB"),
        ("backup, no phones", f"{figures['backup_idle_mb_s']} MB/s in {figures['backup_idle_s']} s "
                              f"({figures['backup_idle_vs_raw_read']}x raw), "
                              f"peak RSS {figures['backup_idle_peak_rss_mb']} MB"),
        ("raw PyMongo read of every document", f"{figures['raw_read_mb_s']} MB/s "
                                               f"(backup = {figures['backup_vs_raw_read']}x)"),
        ("restore", f"{figures['restore_mb_s']} MB/s in {figures['restore_s']} s, peak RSS "
                    f"{figures['restore_peak_rss_mb']} MB, verified {figures['restore_ok']}"),
        ("phones p95, all requests", f"{figures['p95_ms_without_backup']['all requests']} ms without, "
                                     f"{during_p95} ms during a backup"),
        ("phones p95, paced backup", f"{(figures.get('p95_ms_during_paced_backup') or {}).get('all requests')} ms "
                                     f"at {pace} MB/s ({figures.get('paced_backup_s')} s)"),
        ("database RSS before/after backup", f"{figures['db_rss_mb_before_after_backup']} MB"),
    ]
    print(table(rows))
    save("backup" if photo_count >= 5000 and kind == "rust" else f"backup-{kind}-{photo_count}", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
