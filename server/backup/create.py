"""Taking a backup while the server serves: every collection read at one point in time, then the photo bytes
those documents refer to, streamed a few chunks at a time."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, cast

import bson
from bson import json_util
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from server.backup import archive
from server.backup.manifest import MANIFEST_FILE, CollectionEntry, Manifest, TrailHead, dump
from server.backup.snapshot import point_in_time
from server.clock import Clock
from server.db import Client, Database
from server.migrations import RESTORE_MARKER_COLLECTION, schema_version
from server.storage.photos import BUCKET
from server.storage.trail import HEAD_ID

log = logging.getLogger("branch_audit.backup")

FILES = f"{BUCKET}.files"
CHUNKS = f"{BUCKET}.chunks"
# Held by running instances, not data: a restored lease would hold a job back until it lapsed.
NOT_BACKED_UP = frozenset({"leases", RESTORE_MARKER_COLLECTION})
RAW: CodecOptions[RawBSONDocument] = CodecOptions(document_class=RawBSONDocument)
# Documents per getMore, and the most bytes gathered before handing them to the writer thread.
DOCUMENT_BATCH = 1000
WRITE_BATCH_BYTES = 8 * 1024 * 1024
# GridFS chunks are 1 MB (server.storage.photos): at most this many are in memory at once per reader.
CHUNK_BATCH = 4
# Photo files read per query: about this many bytes, at most this many files.
GROUP_BYTES = 16 * 1024 * 1024
GROUP_FILES = 500
# Photo chunks go into the gzip stream as stored blocks: JPEG and HEIC do not shrink, and measured here
# even level 1 ran at 57 MB/s on such bytes against 612 MB/s for level 0 (the stream keeps its CRC).
DOCUMENT_COMPRESSION = 6
PHOTO_COMPRESSION = 0

Progress = Callable[[str, int, int | None], None]
Batch = list[archive.RawDocument]


class BackupFailed(Exception):
    """The backup could not be taken; nothing is left at the target. One readable line."""


def product_version() -> str:
    try:
        return metadata.version("branch-audit")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def collection_file(name: str) -> str:
    return f"{name}.bson.gz"


def _as_json(value: Any) -> Any:
    """Server metadata (index specs, collection options) as canonical Extended JSON values."""
    return json.loads(json_util.dumps(value, json_options=json_util.CANONICAL_JSON_OPTIONS))


def raw_collection(db: Database, name: str) -> AsyncCollection[RawBSONDocument]:
    """The collection read as raw BSON: nothing decoded, every byte kept."""
    return cast("AsyncCollection[RawBSONDocument]", db.get_collection(name, codec_options=RAW))


def _quiet(stage: str, done: int, total: int | None) -> None:
    return None


@dataclass
class _Written:
    name: str
    writer: archive.CollectionWriter
    indexes: list[dict[str, Any]]
    options: dict[str, Any]
    digest: archive.FileDigest | None = None

    def entry(self) -> CollectionEntry:
        if self.digest is None:
            raise RuntimeError(f"{self.name} was not closed")
        return CollectionEntry(name=self.name, file=self.writer.path.name, documents=self.writer.documents,
                               raw_bytes=self.writer.raw_bytes, size=self.digest.size, sha256=self.digest.sha256,
                               indexes=self.indexes, options=self.options)


async def _pipelined(batches: AsyncIterator[Batch], write: Callable[[Batch], None],
                     progress: Callable[[int], None]) -> None:
    """Hand each batch to the writer thread while the next one is read from the database."""
    pending: asyncio.Future[None] | None = None
    done = 0
    try:
        async for batch in batches:
            if pending is not None:
                await pending
            pending = asyncio.ensure_future(asyncio.to_thread(write, batch))
            done += len(batch)
            progress(done)
    finally:
        # Also when reading failed: the writer thread must be done before the file is closed or discarded.
        if pending is not None:
            await asyncio.shield(pending)


async def _document_batches(db: Database, name: str, session: AsyncClientSession) -> AsyncIterator[Batch]:
    cursor = raw_collection(db, name).find({}, session=session, batch_size=DOCUMENT_BATCH)
    batch: Batch = []
    size = 0
    async for doc in cursor:
        raw = doc.raw
        batch.append(raw)
        size += len(raw)
        if len(batch) >= DOCUMENT_BATCH or size >= WRITE_BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


async def _collections(db: Database) -> list[tuple[str, dict[str, Any]]]:
    """Backed-up collections with their options; views and system collections are not data."""
    found = []
    async for info in await db.list_collections():
        name = info["name"]
        if info.get("type", "collection") != "collection" or name.startswith("system."):
            continue
        if name in NOT_BACKED_UP:
            continue
        found.append((name, dict(info.get("options") or {})))
    return sorted(found)


async def _trail_head(db: Database, session: AsyncClientSession) -> TrailHead:
    head = await db.trail_head.find_one({"_id": HEAD_ID}, session=session)
    pending = await db.trail_pending.aggregate(
        [{"$group": {"_id": None, "n": {"$sum": {"$size": "$entry_ids"}}}}], session=session)
    rows = await pending.to_list()
    return TrailHead(seq=int(head["seq"]) if head else 0, hash=str(head["hash"]) if head else None,
                     unsealed=int(rows[0]["n"]) if rows else 0)


PhotoFile = tuple[Any, int, int]  # GridFS file id, length, chunk size


def photo_files(path: Path) -> Iterator[PhotoFile]:
    """Every GridFS file in the backup, read back from its own archive (streamed: never all in memory)."""
    for raw in archive.read_documents(path):
        doc = bson.decode(raw)
        yield doc["_id"], int(doc.get("length", 0)), int(doc.get("chunkSize") or 1)


def file_groups(files: Iterable[PhotoFile]) -> Iterator[list[PhotoFile]]:
    """Files in groups of about GROUP_BYTES: one query per group instead of one per file (measured on
    secantusd-rs: 20 ms per file queried alone, so 5,000 photos' 15,000 files took minutes)."""
    group: list[PhotoFile] = []
    size = 0
    for file in files:
        if group and (size >= GROUP_BYTES or len(group) >= GROUP_FILES):
            yield group
            group, size = [], 0
        group.append(file)
        size += file[1]
    if group:
        yield group


async def _groups_from_thread(path: Path) -> AsyncIterator[list[PhotoFile]]:
    source = file_groups(photo_files(path))
    end: list[PhotoFile] = []
    while (group := await asyncio.to_thread(next, source, end)) is not end:
        yield group


async def _chunk_batches(db: Database, files: AsyncIterator[list[PhotoFile]], total: int, progress: Progress,
                         counter: list[int], max_mb_s: float = 0.0) -> AsyncIterator[Batch]:
    chunks = raw_collection(db, CHUNKS)
    done = 0
    started = time.monotonic()
    async for group in files:
        expected = {file_id: -(-length // chunk_size) for file_id, length, chunk_size in group}
        seen = dict.fromkeys(expected, 0)
        batch: Batch = []
        cursor = chunks.find({"files_id": {"$in": list(expected)}}, batch_size=CHUNK_BATCH)
        async for doc in cursor.sort([("files_id", 1), ("n", 1)]):
            file_id = doc["files_id"]
            if doc["n"] >= expected[file_id]:
                continue  # beyond the file's length: never written by us, not part of the file
            seen[file_id] += 1
            batch.append(doc.raw)
            counter[0] += len(doc.raw)
            if len(batch) >= CHUNK_BATCH:
                yield batch
                batch = []
                await _pace(counter[0], started, max_mb_s)
        if batch:
            yield batch
            await _pace(counter[0], started, max_mb_s)
        lost = [file_id for file_id, n in expected.items() if seen[file_id] != n]
        if lost:
            # Chunks are written before their files document and never change; only a purge removes them.
            raise BackupFailed(f"photo file {lost[0]} lost its bytes while the backup ran (purged by the "
                               "retention policy?); take the backup again")
        done += len(group)
        progress("photos", done, total)


async def _pace(read: int, started: float, max_mb_s: float) -> None:
    """Sleep while the bytes read so far are ahead of `max_mb_s` (0: no pacing)."""
    if max_mb_s > 0:
        ahead = read / (max_mb_s * 1e6) - (time.monotonic() - started)
        if ahead > 0:
            await asyncio.sleep(ahead)


async def _write_collection(db: Database, name: str, directory: Path, level: int, options: dict[str, Any],
                            batches: AsyncIterator[Batch], progress: Callable[[int], None]) -> _Written:
    indexes = [_as_json({k: v for k, v in spec.items() if k not in ("v", "ns")})
               async for spec in await db[name].list_indexes()]
    writer = await asyncio.to_thread(archive.CollectionWriter, directory / collection_file(name), level)
    written = _Written(name, writer, indexes, _as_json(options))
    try:
        await _pipelined(batches, writer.write, progress)
        written.digest = await asyncio.to_thread(writer.close)
    except BaseException:
        await asyncio.to_thread(writer.discard)
        raise
    return written


async def create_backup(client: Client, db: Database, target: Path, *, clock: Clock,
                        progress: Progress | None = None, method: str | None = None,
                        max_mb_s: float = 0.0) -> Manifest:
    """Write a complete backup of `db` to the directory `target` (which must not exist yet).

    It is written as `<target>.partial` and renamed once complete, so a backup cut short by a crash is
    never taken for a whole one. `max_mb_s` paces the photo bytes (0: as fast as the database gives them),
    leaving the database and the cores to the phones. Raises BackupFailed."""
    report = progress or _quiet
    partial = await asyncio.to_thread(_start_directory, target)
    try:
        manifest = await _take(client, db, partial, clock, report, method, max_mb_s)
        await asyncio.to_thread(_finish_directory, partial, target, manifest)
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, partial, True)
        raise
    return manifest


def _start_directory(target: Path) -> Path:
    if target.exists():
        raise BackupFailed(f"{target} already exists; a backup never overwrites another")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # what an earlier attempt left when it was cut short
    partial.mkdir(parents=True)
    return partial


def _finish_directory(partial: Path, target: Path, manifest: Manifest) -> None:
    """The manifest last, then one rename: a directory named like a backup is always a whole one."""
    with open(partial / MANIFEST_FILE, "w", encoding="utf-8") as handle:
        handle.write(dump(manifest))
        handle.flush()
        os.fsync(handle.fileno())
    _sync_directory(partial)
    partial.rename(target)
    _sync_directory(target.parent)


async def _take(client: Client, db: Database, directory: Path, clock: Clock, report: Progress,
                method: str | None, max_mb_s: float) -> Manifest:
    started = clock.now()
    collections = await _collections(db)
    written: list[_Written] = []
    async with point_in_time(client, db, method) as pit:
        session = pit.session
        version = await schema_version(db, session)
        for index, (name, options) in enumerate(collections, start=1):
            if name == CHUNKS:
                continue  # read after the snapshot, file by file (see server.backup.snapshot)

            def step(done: int, name: str = name) -> None:
                report(f"documents of {name}", done, None)

            batches = _document_batches(db, name, session)
            written.append(await _write_collection(db, name, directory, DOCUMENT_COMPRESSION, options, batches,
                                                   step))
            report("collections", index, len(collections))
        trail = await _trail_head(db, session)
        method_used = pit.method
    files_entry = next((w for w in written if w.name == FILES), None)
    file_count = files_entry.writer.documents if files_entry else 0
    photo_bytes = [0]
    chunk_options = next((o for n, o in collections if n == CHUNKS), {})
    if files_entry is not None or any(n == CHUNKS for n, _ in collections):
        groups = _groups_from_thread(files_entry.writer.path) if files_entry else _no_groups()
        written.append(await _write_collection(
            db, CHUNKS, directory, PHOTO_COMPRESSION, chunk_options,
            _chunk_batches(db, groups, file_count, report, photo_bytes, max_mb_s), lambda _: None))
    manifest = Manifest(product_version=product_version(), schema_version=version, database=db.name,
                        started_at=started, finished_at=clock.now(), snapshot_method=method_used,
                        collections=[w.entry() for w in written], trail=trail, photo_files=file_count,
                        photo_bytes=photo_bytes[0])
    log.info("backup taken: %d collections, %d photo files, %d bytes (%s)", len(written), file_count,
             manifest.total_size, method_used,
             extra={"path": str(directory), "collections": len(written), "photo_files": file_count,
                    "bytes": manifest.total_size, "snapshot_method": method_used})
    return manifest


async def _no_groups() -> AsyncIterator[list[PhotoFile]]:
    return
    yield  # an async generator that yields nothing


def _sync_directory(path: Path) -> None:
    """Make the directory's entries (the files, the rename) durable."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)

