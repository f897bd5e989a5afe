"""Photos (metadata in `photos`, bytes in the GridFS bucket `photos`) and resumable uploads in progress."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from gridfs.asynchronous.grid_file import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession

from server.db import Database, Doc
from server.storage.audits import flags_raised

BUCKET = "photos"
# 1 MB chunks: on the embedded server a 1 MB GridFS file with 255 KB chunks stores at ~20 files/s,
# with 1 MB chunks at ~30 files/s (docs: EMBEDDED-DB.md); fewer documents per photo, same memory bound.
GRIDFS_CHUNK_BYTES = 1024 * 1024
# Originals are written straight from their spool, this many chunks per insert_many: 4 MB per round trip,
# so a 20 MB photo is five round trips and never more than 4 MB of it is held for the write.
CHUNKS_PER_WRITE = 4
# Candidates examined per near-duplicate lookup; a band shared by more photos than this is noise.
NEAR_DUPLICATE_CANDIDATES = 500

INDEXES: dict[str, list[IndexModel]] = {
    "photos": [
        IndexModel("dedup_key", unique=True),
        IndexModel([("audit_id", ASCENDING), ("item_id", ASCENDING)]),
        IndexModel([("rectification_id", ASCENDING), ("uploaded_at", ASCENDING)]),
        IndexModel("sha256"),
        IndexModel("phash_bands"),
        IndexModel([("flags", ASCENDING), ("uploaded_at", ASCENDING)]),
        IndexModel("purge_pending", sparse=True),
    ],
    "uploads": [IndexModel([("created_by", ASCENDING), ("created_at", ASCENDING)]), IndexModel("expires_at")],
    "upload_chunks": [IndexModel([("upload_id", ASCENDING), ("offset", ASCENDING)], unique=True)],
    # The GridFS indexes (what the driver creates on a bucket's first upload), declared because originals
    # are written without the driver's upload stream (write_chunks + file_document).
    f"{BUCKET}.files": [IndexModel([("filename", ASCENDING), ("uploadDate", ASCENDING)])],
    f"{BUCKET}.chunks": [IndexModel([("files_id", ASCENDING), ("n", ASCENDING)], unique=True)],
}


def bucket(db: Database) -> AsyncGridFSBucket:
    """The GridFS bucket holding originals, sanitized variants and thumbnails."""
    return AsyncGridFSBucket(db, bucket_name=BUCKET, chunk_size_bytes=GRIDFS_CHUNK_BYTES)


def dedup_key(owner_type: str, owner_id: str, item_id: str | None, sha256: str) -> str:
    """Identical bytes for the same owner (audit item, or rectification) are one photo."""
    return f"{owner_type}:{owner_id}:{item_id or ''}:{sha256}"


def owner_key(owner_type: str, owner_id: str) -> str:
    return f"{owner_type}:{owner_id}"


async def count_by_item(db: Database, audit_id: str) -> dict[str, int]:
    """How many photos each item of an audit has (the audit's own photos, not rectification evidence)."""
    pipeline: list[dict[str, Any]] = [
        {"$match": {"audit_id": audit_id, "owner_type": "audit"}},
        {"$group": {"_id": "$item_id", "n": {"$sum": 1}}},
    ]
    cursor = await db.photos.aggregate(pipeline)
    return {row["_id"]: int(row["n"]) async for row in cursor if row["_id"]}


async def photo(db: Database, photo_id: str, session: AsyncClientSession | None = None) -> Doc | None:
    return await db.photos.find_one({"_id": photo_id}, session=session)


async def by_dedup_key(db: Database, key: str) -> Doc | None:
    return await db.photos.find_one({"dedup_key": key})


# What a listed photo's metadata is made of (server.http.routes.photos.public_photo): not its thumbnails,
# hash bands or storage keys.
LISTED_FIELDS = dict.fromkeys((
    "sha256", "size", "media_type", "width", "height", "owner_type", "audit_id", "item_id", "rectification_id",
    "finding_id", "branch_id", "uploader_id", "uploaded_at", "captured_at", "captured_at_source", "gps", "device",
    "orientation", "phash", "flags", "purged", "device_report"), 1)


async def photos_of_audit(db: Database, audit_id: str) -> list[Doc]:
    found = db.photos.find({"audit_id": audit_id}, LISTED_FIELDS)
    return await found.sort([("item_id", 1), ("uploaded_at", 1)]).to_list()


async def insert_photo(db: Database, doc: Doc, session: AsyncClientSession) -> None:
    await db.photos.insert_one(doc, session=session)


async def holders_of_bytes(db: Database, sha256: str) -> list[Doc]:
    """The photos (their owner and dedup keys) already made of these exact bytes: one read answers both
    whether an upload is a retry (its dedup key is among them) and whether the bytes are evidence for another
    audit or rectification. Read by sha256 alone (its index), the rest compared in code: secantusd-py scans
    the collection for a filter of two fields; photos sharing one sha256 are few."""
    found = db.photos.find({"sha256": sha256}, {"owner_key": 1, "dedup_key": 1}).limit(NEAR_DUPLICATE_CANDIDATES)
    return await found.to_list()


async def near_duplicate_candidates(db: Database, bands: list[str], owner: str) -> list[str]:
    """Perceptual hashes of other owners' photos sharing at least one band (by the band index alone, as
    above; the owner's own few photos are skipped here)."""
    cursor = db.photos.find({"phash_bands": {"$in": bands}}, {"phash": 1, "owner_key": 1}).limit(
        NEAR_DUPLICATE_CANDIDATES
    )
    return [doc["phash"] async for doc in cursor if doc.get("phash") and doc.get("owner_key") != owner]


async def existing_file_ids(db: Database, file_ids: list[str],
                            session: AsyncClientSession | None = None) -> set[str]:
    """Which of these GridFS files are stored (one indexed lookup by _id)."""
    found = db[f"{BUCKET}.files"].find({"_id": {"$in": file_ids}}, {"_id": 1}, session=session)
    return {doc["_id"] async for doc in found}


async def put_files(db: Database, files: list[tuple[Doc, bytes]], session: AsyncClientSession) -> None:
    """Store small derived files (thumbnails, sanitized variants: `file_document`s with their bytes) inside
    the caller's transaction: every chunk of every file in one insert, then the files documents in one.

    Never through the driver's bucket upload: before each write it runs an empty-filter `find_one` on the
    files and chunks collections, which the embedded server answers by reading every stored photo. In a
    transaction nothing of a failed attempt is left behind, so no clean-up of earlier chunks is needed."""
    chunks = [{"files_id": doc["_id"], "n": n, "data": data[offset:offset + GRIDFS_CHUNK_BYTES]}
              for doc, data in files for n, offset in enumerate(range(0, len(data), GRIDFS_CHUNK_BYTES))]
    if chunks:
        await db[f"{BUCKET}.chunks"].insert_many(chunks, session=session)
    if files:
        await db[f"{BUCKET}.files"].insert_many([doc for doc, _ in files], session=session)


async def write_chunks(db: Database, file_id: str, read_at: Callable[[int, int], bytes], length: int) -> None:
    """Store `length` bytes (read by position) as the chunks of GridFS file `file_id`, several per round trip.

    The file is not visible until its files document (`file_document`) is inserted, which the caller
    does in the transaction that records the photo; `discard_file` removes chunks that never got one."""
    chunks = db[f"{BUCKET}.chunks"]
    batch: list[Doc] = []
    for n, offset in enumerate(range(0, length, GRIDFS_CHUNK_BYTES)):
        batch.append({"files_id": file_id, "n": n, "data": read_at(offset, GRIDFS_CHUNK_BYTES)})
        if len(batch) == CHUNKS_PER_WRITE:
            await chunks.insert_many(batch)
            batch = []
    if batch:
        await chunks.insert_many(batch)


async def read_file(db: Database, file_id: str) -> bytes | None:
    """A whole (small) GridFS file in one round trip: its chunks by the (files_id, n) index. None when no
    chunk is stored."""
    parts = [doc["data"] async for doc in
             db[f"{BUCKET}.chunks"].find({"files_id": file_id}, {"_id": 0, "data": 1}).sort("n", ASCENDING)]
    return b"".join(parts) if parts else None


def file_document(
    file_id: str, length: int, filename: str, metadata: dict[str, Any], uploaded_at: datetime
) -> Doc:
    """The GridFS files document for chunks written by `write_chunks` (the driver's format)."""
    return {
        "_id": file_id,
        "length": length,
        "chunkSize": GRIDFS_CHUNK_BYTES,
        "uploadDate": uploaded_at,
        "filename": filename,
        "metadata": metadata,
    }


async def insert_file_document(db: Database, doc: Doc, session: AsyncClientSession) -> None:
    await db[f"{BUCKET}.files"].insert_one(doc, session=session)


async def discard_file(db: Database, file_id: str) -> None:
    """Remove a file's chunks and files document, whether or not its write completed."""
    await db[f"{BUCKET}.chunks"].delete_many({"files_id": file_id})
    await db[f"{BUCKET}.files"].delete_one({"_id": file_id})


async def delete_file(db: Database, file_id: Any) -> int:
    """Remove a GridFS file if present; returns the bytes freed."""
    files = await db[f"{BUCKET}.files"].find_one({"_id": file_id}, {"length": 1})
    try:
        await bucket(db).delete(file_id)
    except NoFile:
        return 0
    return int((files or {}).get("length", 0))


def stored_file_ids(doc: Doc) -> list[Any]:
    """Every GridFS file a photo owns: original, sanitized variant, thumbnails."""
    ids: list[Any] = [doc["gridfs_id"]] if doc.get("gridfs_id") else []
    sanitized = (doc.get("variants") or {}).get("sanitized")
    if sanitized:
        ids.append(sanitized["gridfs_id"])
    ids.extend((doc.get("thumbnails") or {}).values())
    return ids


async def attach_to_audit(db: Database, audit_id: str, flags: list[str], statuses: tuple[str, ...],
                          session: AsyncClientSession) -> bool:
    """Count a photo on its audit and raise the photo's flags there (each once, as $addToSet would), only if
    the audit still takes photos; False, and nothing changed, when it no longer does.

    One pipeline update by `_id` alone in the caller's transaction (secantusd-py scans the collection for a
    filter of two fields), with no read before it: the count moves whenever the update applies, so whether
    the audit was modified says whether it still took photos; a change committed by another transaction
    since this one's snapshot makes the update conflict, and the upload's transaction is retried."""
    takes = {"$in": ["$status", list(statuses)]}
    stage: dict[str, Any] = {"photo_uploads": {"$add": [{"$ifNull": ["$photo_uploads", 0]}, 1]}}
    if flags:
        stage["flags"] = flags_raised(flags)
    guarded = {field: {"$cond": [takes, value, f"${field}"]} for field, value in stage.items()}
    result = await db.audits.update_one({"_id": audit_id}, [{"$set": guarded}], session=session)
    return result.modified_count == 1


async def audit_takes_photos(
    db: Database, audit_id: str, statuses: tuple[str, ...], session: AsyncClientSession
) -> bool:
    """Whether the audit is still in one of the states that take (and give up) photos."""
    found = await db.audits.count_documents(
        {"_id": audit_id, "status": {"$in": list(statuses)}}, session=session, limit=1
    )
    return bool(found)


async def delete_photo_record(db: Database, photo_id: str, session: AsyncClientSession) -> None:
    await db.photos.delete_one({"_id": photo_id}, session=session)
