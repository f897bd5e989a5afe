"""Restoring a backup into an empty database: every checksum first, then the documents as they were (raw
BSON), then the indexes, and last the proof: the counts per collection and the trail's hash chain.

Nothing is written until every file of the backup has been read and matched its checksum. While the
documents go in, a marker (`restore_in_progress`) tells the server not to serve the database: a restore cut
off half-way leaves a database the server refuses, until a restore with --force finishes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bson import json_util
from bson.raw_bson import RawBSONDocument
from pymongo import IndexModel

from server.backup import archive
from server.backup.create import Progress, raw_collection
from server.backup.manifest import MANIFEST_FILE, BackupRefused, CollectionEntry, Manifest, check_schema, load
from server.clock import Clock
from server.db import Database
from server.migrations import RESTORE_MARKER_COLLECTION, latest
from server.storage.trail import HEAD_ID, VerifyResult, verify_chain

DOCUMENT_BATCH = 1000
# One insert carries at most this much (a few 1 MB photo chunks, or up to DOCUMENT_BATCH documents).
INSERT_BATCH_BYTES = 8 * 1024 * 1024
MARKER_ID = "restore"


@dataclass(frozen=True)
class RestoreReport:
    manifest: Manifest
    documents: int
    seconds: float
    counts_differ: dict[str, tuple[int, int]]
    trail: VerifyResult
    trail_head_matches: bool

    @property
    def ok(self) -> bool:
        return not self.counts_differ and self.trail.ok and self.trail_head_matches


def _quiet(stage: str, done: int, total: int | None) -> None:
    return None


def _read_manifest(path: Path) -> Manifest:
    manifest_path = path / MANIFEST_FILE
    if not path.is_dir():
        raise BackupRefused(f"{path} is not a backup directory")
    if not manifest_path.is_file():
        partial = path.with_name(path.name + ".partial")
        hint = " (a .partial directory is a backup that never finished)" if partial.exists() else ""
        raise BackupRefused(f"{path} has no manifest: not a finished backup{hint}")
    return load(manifest_path.read_text(encoding="utf-8", errors="replace"))


def _verify_files(path: Path, manifest: Manifest, report: Progress) -> None:
    for index, entry in enumerate(manifest.collections, start=1):
        try:
            archive.verify_file(path / entry.file, archive.FileDigest(entry.size, entry.sha256), entry.documents)
        except archive.ArchiveDamaged as exc:
            raise BackupRefused(f"damaged backup: {exc}") from None
        report("checksums", index, len(manifest.collections))


async def verify_backup(path: Path, progress: Progress | None = None, understood: int | None = None) -> Manifest:
    """Read the whole backup and check it against its manifest; raises BackupRefused, writes nothing."""
    report = progress or _quiet
    manifest = await asyncio.to_thread(_read_manifest, path)
    check_schema(manifest, latest() if understood is None else understood)
    await asyncio.to_thread(_verify_files, path, manifest, report)
    return manifest


async def occupied_collections(db: Database) -> list[str]:
    """Collections that hold documents (an empty collection, e.g. made by index creation, does not count)."""
    names = sorted(n for n in await db.list_collection_names() if not n.startswith("system."))
    return [n for n in names if await db[n].find_one({}, {"_id": 1}) is not None]


def _batches(path: Path, per_batch: int) -> Iterator[list[RawBSONDocument]]:
    batch: list[RawBSONDocument] = []
    size = 0
    for raw in archive.read_documents(path):
        batch.append(RawBSONDocument(raw))
        size += len(raw)
        if len(batch) >= per_batch or size >= INSERT_BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


async def _batches_from_thread(path: Path, per_batch: int) -> AsyncIterator[list[RawBSONDocument]]:
    """Decompress in a thread, one batch ahead of the inserts."""
    source = _batches(path, per_batch)
    end: list[RawBSONDocument] = []
    following = asyncio.ensure_future(asyncio.to_thread(next, source, end))
    while True:
        batch = await following
        if batch is end:
            return
        following = asyncio.ensure_future(asyncio.to_thread(next, source, end))
        yield batch


def _index_models(entry: CollectionEntry) -> list[IndexModel]:
    models = []
    for spec in entry.indexes:
        decoded: dict[str, Any] = json_util.loads(json_util.dumps(spec))
        if decoded.get("name") == "_id_":
            continue
        keys = list(decoded.pop("key").items())
        models.append(IndexModel(keys, **decoded))
    return models


async def _restore_collection(db: Database, path: Path, entry: CollectionEntry, report: Progress) -> int:
    options: dict[str, Any] = json_util.loads(json_util.dumps(entry.options))
    if options and entry.name not in await db.list_collection_names():
        await db.create_collection(entry.name, **options)
    target = raw_collection(db, entry.name)
    written = 0
    async for batch in _batches_from_thread(path / entry.file, DOCUMENT_BATCH):
        await target.insert_many(batch, ordered=True)
        written += len(batch)
        report(f"documents of {entry.name}", written, entry.documents)
    models = _index_models(entry)
    if models:
        await db[entry.name].create_indexes(models)
    return written


async def restore_backup(db: Database, path: Path, *, clock: Clock, force: bool = False,
                         progress: Progress | None = None) -> RestoreReport:
    """Restore the backup at `path` into `db`, which must hold no documents unless `force` (then it is
    emptied first). Raises BackupRefused before writing anything when the backup or the target is wrong."""
    report = progress or _quiet
    started = time.monotonic()
    occupied = await occupied_collections(db)
    if occupied and not force:
        shown = ", ".join(occupied[:5]) + (", ..." if len(occupied) > 5 else "")
        raise BackupRefused(f"the database {db.name} is not empty ({len(occupied)} collections hold documents: "
                            f"{shown}); restore into an empty one, or pass --force to replace its contents")
    manifest = await verify_backup(path, report)
    if force:
        for name in await db.list_collection_names():
            if not name.startswith("system."):
                await db.drop_collection(name)
    await db[RESTORE_MARKER_COLLECTION].insert_one({"_id": MARKER_ID, "backup": str(path),
                                                    "started_at": clock.now()})
    documents = 0
    for index, entry in enumerate(manifest.collections, start=1):
        documents += await _restore_collection(db, path, entry, report)
        report("collections", index, len(manifest.collections))
    counts_differ = {}
    for entry in manifest.collections:
        stored = await db[entry.name].count_documents({})
        if stored != entry.documents:
            counts_differ[entry.name] = (entry.documents, stored)
    trail = await verify_chain(db)
    head = await db.trail_head.find_one({"_id": HEAD_ID})
    head_matches = (head or {}).get("hash") == manifest.trail.hash and int((head or {}).get("seq", 0)) == \
        manifest.trail.seq
    result = RestoreReport(manifest, documents, time.monotonic() - started, counts_differ, trail, head_matches)
    if result.ok:
        await db[RESTORE_MARKER_COLLECTION].drop()
    return result
