"""The two embedded servers side by side: the same raw PyMongo operations on secantusd-rs and secantusd-py, each
on a data directory on disk with the service's durability (w=majority, j=true, --sync-on-commit), in one run.

Also probes the Python server's known costs that the project works around (see the README): findAndModify
by _id, an empty-filter find on a big collection, documents examined by a sorted page, `hello` while a large
find runs, and CPU when nothing happens. `python -m bench.embedded [--idle-s 60]`."""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymongo
from bson import ObjectId
from pymongo import ASCENDING

from bench.common import save, table
from server.embedded import EmbeddedMongo, EmbeddedServer, ServerKind, rust_server_path

Client = pymongo.MongoClient[dict[str, Any]]
CHUNK = 255 * 1024
PHOTO = os.urandom(1024 * 1024)
BIG_COLLECTION_CHUNKS = 400  # ~100 MB of GridFS chunks
DOCS = 20_000


def _p50_ms(run: Callable[[int], object], rounds: int) -> float:
    times = []
    for n in range(rounds):
        started = time.perf_counter()
        run(n)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _write_photo(db: Any, n: int) -> None:
    """1 MB as the service stores an original: its chunks, then its file document, journaled."""
    file_id = ObjectId()
    db.photos.chunks.insert_many([{"files_id": file_id, "n": i, "data": PHOTO[off:off + CHUNK]}
                                  for i, off in enumerate(range(0, len(PHOTO), CHUNK))])
    db.photos.files.insert_one({"_id": file_id, "length": len(PHOTO), "chunkSize": CHUNK, "n": n})


def _hello_during_large_find(client: Client, uri: str) -> float:
    """The slowest `hello` answered on a second connection while a find reads the whole chunk collection."""
    done = threading.Event()

    def scan() -> None:
        try:
            for _ in range(3):
                list(client.bench.photos.chunks.find({"data": {"$exists": True}, "n": {"$gt": 99}}))
        finally:
            done.set()

    worst = 0.0
    monitor: Client = pymongo.MongoClient(uri, directConnection=True)
    try:
        monitor.admin.command("ping")
        thread = threading.Thread(target=scan)
        thread.start()
        while not done.is_set():
            started = time.perf_counter()
            monitor.admin.command("hello")
            worst = max(worst, (time.perf_counter() - started) * 1000)
            time.sleep(0.01)
        thread.join()
    finally:
        monitor.close()
    return worst


def measure(kind: ServerKind, port: int, idle_s: float) -> dict[str, Any]:
    data_dir = tempfile.mkdtemp(prefix=f"bench-embedded-{kind}-")
    server = EmbeddedMongo(data_dir, port=port, log_path=Path(data_dir) / "db.log",
                           server=EmbeddedServer.choose(kind))
    started = time.perf_counter()
    server.start()
    client: Client = pymongo.MongoClient(server.uri, w="majority", journal=True)
    client.admin.command("ping")
    figures: dict[str, Any] = {"start_s": round(time.perf_counter() - started, 3)}
    db = client.bench
    try:
        db.audits.create_index([("branch_id", ASCENDING), ("started_at", ASCENDING)])
        db.audits.insert_many([{"_id": f"a{n}", "branch_id": f"b{n % 400}", "started_at": n, "state": "submitted",
                                "answers": [{"item": i, "value": "yes"} for i in range(20)]} for n in range(DOCS)])
        figures["find_one_by_id_ms"] = _p50_ms(lambda n: db.audits.find_one({"_id": f"a{n * 37 % DOCS}"}), 300)
        figures["find_one_indexed_ms"] = _p50_ms(
            lambda n: db.audits.find_one({"branch_id": f"b{n % 400}", "started_at": n % 400}), 300)
        figures["insert_j_ms"] = _p50_ms(lambda n: db.writes.insert_one({"n": n, "body": "x" * 200}), 300)
        figures["update_by_id_j_ms"] = _p50_ms(
            lambda n: db.audits.update_one({"_id": f"a{n}"}, {"$set": {"state": "reviewed"}}), 300)
        figures["find_one_and_update_by_id_ms"] = _p50_ms(
            lambda n: db.audits.find_one_and_update({"_id": f"a{n + 1000}"}, {"$set": {"state": "reviewed"}}), 100)

        def transaction(n: int) -> None:
            with client.start_session() as session, session.start_transaction():
                db.audits.update_one({"_id": f"a{n + 2000}"}, {"$set": {"state": "reviewed"}}, session=session)
                db.outbox.insert_one({"type": "audit.reviewed", "n": n}, session=session)
                db.counters.update_one({"_id": "events"}, {"$inc": {"n": 1}}, upsert=True, session=session)

        figures["transaction_3_writes_ms"] = _p50_ms(transaction, 200)
        started = time.perf_counter()
        for n in range(BIG_COLLECTION_CHUNKS // 4):
            _write_photo(db, n)
        figures["gridfs_1mb_write_ms"] = (time.perf_counter() - started) * 1000 / (BIG_COLLECTION_CHUNKS // 4)
        figures["empty_filter_find_one_ms"] = _p50_ms(lambda _n: db.photos.chunks.find_one({}, {"_id": 1}), 5)
        some_id = db.photos.chunks.find_one({"n": 0}, {"_id": 1}, sort=[("_id", ASCENDING)])
        figures["find_one_chunk_by_id_ms"] = _p50_ms(
            lambda _n: db.photos.chunks.find_one({"_id": some_id["_id"] if some_id else None}, {"_id": 1}), 5)
        plan = db.audits.find({"branch_id": "b7"}).sort([("started_at", -1)]).limit(5).explain()
        stats = plan.get("executionStats", {})
        figures["sorted_page_of_5_examined"] = stats.get("totalDocsExamined")
        figures["sorted_page_of_5_keys"] = stats.get("totalKeysExamined")
        figures["hello_during_large_find_worst_ms"] = round(_hello_during_large_find(client, server.uri), 1)
        pid = server.process.pid if server.process else 0
        time.sleep(2)  # let the last work settle
        before = _cpu_seconds(pid)
        time.sleep(idle_s)
        figures["idle_cpu_percent_of_core"] = round((_cpu_seconds(pid) - before) / idle_s * 100, 2)
        figures["rss_mb_after"] = round(_rss_mb(pid))
    finally:
        client.close()
        server.stop()
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--idle-s", type=float, default=60.0)
    parser.add_argument("--port", type=int, default=18081)
    args = parser.parse_args()
    if not rust_server_path().exists():
        raise SystemExit("secantusd-rs is not built on this machine (make embedded)")
    kinds: tuple[ServerKind, ...] = ("rust", "python")
    results: dict[str, dict[str, Any]] = {kind: measure(kind, args.port + i, args.idle_s)
                                          for i, kind in enumerate(kinds)}
    rust, python = results["rust"], results["python"]
    rows = [("operation", "rust | python | python/rust")]
    for key in rust:
        r, p = rust[key], python[key]
        ratio = f"{p / r:.1f}x" if isinstance(r, (int, float)) and isinstance(p, (int, float)) and r else "-"
        rows.append((key, f"{r} | {p} | {ratio}"))
    print(table(rows))
    save("embedded", results)


if __name__ == "__main__":
    main()
