"""tus 1.0 resumable uploads (core, creation, termination): protocol headers and the bytes received so far.
Received bytes are kept in MongoDB as `upload_chunks` keyed by upload id and offset; each append and
its new offset commit in one transaction, so HEAD always reports bytes that are really stored."""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from bson import Binary
from pymongo.asynchronous.client_session import AsyncClientSession

from server.context import Services
from server.db import Doc
from server.errors import BadRequest, Conflict, NotFound, PayloadTooLarge, Problem
from server.photos.spool import Spool

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination"
UPLOADS_PATH = "/api/v1/uploads"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
# A phone may stay offline for a weekend before it resumes a half-sent photo.
UPLOAD_LIFETIME = timedelta(days=3)
# Received bytes are committed in pieces of this size: memory per PATCH stays bounded, and an
# interrupted PATCH loses at most this much (the rest is resumable from HEAD's Upload-Offset).
UPLOAD_CHUNK_BYTES = 1024 * 1024
MAX_METADATA_BYTES = 4096
# How a request body ends early when the phone loses its connection mid-PATCH.
CLIENT_GONE: tuple[type[Exception], ...] = (ConnectionError, asyncio.IncompleteReadError, HttpProcessingError)


class PreconditionFailed(Problem):
    status, slug, title = 412, "tus-version", "Unsupported tus protocol version"


class OffsetMismatch(Conflict):
    slug, title = "upload-offset", "Upload-Offset does not match the bytes received"


def tus_headers() -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION}


async def add_tus_resumable(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every tus response but OPTIONS carries Tus-Resumable, errors included."""
    if request.path.startswith(UPLOADS_PATH) and request.method != "OPTIONS":
        response.headers.setdefault("Tus-Resumable", TUS_VERSION)


def require_tus_version(request: web.Request) -> None:
    """412 (with Tus-Version) unless the client speaks tus 1.0.0."""
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise PreconditionFailed(
            f"Send Tus-Resumable: {TUS_VERSION}", headers={"Tus-Version": TUS_VERSION, **tus_headers()}
        )


def parse_metadata(header: str | None) -> dict[str, str]:
    """Upload-Metadata: comma-separated `key base64value` pairs (the value may be absent)."""
    if not header:
        return {}
    if len(header) > MAX_METADATA_BYTES:
        raise BadRequest("Upload-Metadata is too long")
    pairs: dict[str, str] = {}
    for item in header.split(","):
        parts = item.strip().split(" ")
        if not parts[0] or len(parts) > 2 or parts[0] in pairs:
            raise BadRequest("Upload-Metadata must be comma-separated 'key base64' pairs with unique keys")
        try:
            value = base64.b64decode(parts[1], validate=True).decode("utf-8") if len(parts) == 2 else ""
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequest(f"Upload-Metadata value of {parts[0]} is not base64 UTF-8") from None
        pairs[parts[0]] = value
    return pairs


def header_int(request: web.Request, name: str) -> int:
    value = request.headers.get(name)
    if value is None or not value.isdigit() or len(value) > 15:
        raise BadRequest(f"{name} must be a non-negative integer")
    return int(value)


def new_upload(
    *, user_id: str, owner: dict[str, Any], filename: str | None, length: int, now: datetime
) -> Doc:
    return {
        "_id": uuid.uuid4().hex,
        "created_by": user_id,
        **owner,
        "filename": filename,
        "length": length,
        "offset": 0,
        "status": "receiving",
        "photo_id": None,
        "problem": None,
        "created_at": now,
        "updated_at": now,
        "expires_at": now + UPLOAD_LIFETIME,
    }


async def upload_of(services: Services, upload_id: str, user_id: str) -> Doc:
    """The caller's own upload; anyone else's is 404."""
    doc = await services.db.uploads.find_one({"_id": upload_id})
    if doc is None or doc.get("created_by") != user_id or doc["expires_at"] <= services.clock.now():
        raise NotFound("Upload not found")
    return doc


async def append(services: Services, upload: Doc, offset: int, data: bytes) -> int:
    """Store `data` at `offset` and advance the upload's offset, atomically; returns the new offset."""
    db = services.db
    end = offset + len(data)

    async def write(session: AsyncClientSession) -> None:
        moved = await db.uploads.update_one(
            {"_id": upload["_id"], "offset": offset, "status": "receiving"},
            {"$set": {"offset": end, "updated_at": services.clock.now()}},
            session=session,
        )
        if not moved.matched_count:
            raise OffsetMismatch(
                "Another request moved this upload on; HEAD it for the offset", headers=tus_headers()
            )
        await db.upload_chunks.replace_one(
            {"_id": f"{upload['_id']}:{offset:012d}"},
            {
                "upload_id": upload["_id"],
                "offset": offset,
                "data": Binary(data),
                "expires_at": upload["expires_at"],
            },
            upsert=True,
            session=session,
        )

    async with services.client.start_session() as session:
        await session.with_transaction(write)
    return end


async def receive(
    services: Services, upload: Doc, offset: int, read: Callable[[], Awaitable[bytes]]
) -> tuple[int, bool]:
    """Append a PATCH body as it streams in. Returns (new offset, whether the client went away)."""
    length = int(upload["length"])
    buffer = bytearray()
    interrupted = False
    try:
        while True:
            data = await read()
            if not data:
                break
            if offset + len(buffer) + len(data) > length:
                raise PayloadTooLarge(f"The body goes past Upload-Length ({length} bytes)")
            buffer += data
            while len(buffer) >= UPLOAD_CHUNK_BYTES:
                offset = await append(services, upload, offset, bytes(buffer[:UPLOAD_CHUNK_BYTES]))
                del buffer[:UPLOAD_CHUNK_BYTES]
    except CLIENT_GONE:
        interrupted = True
    if buffer:
        offset = await append(services, upload, offset, bytes(buffer))
    return offset, interrupted


async def assemble(services: Services, upload: Doc, spool: Spool) -> None:
    """Copy the stored pieces, in order, into `spool` (hashing them as a direct upload would be)."""
    expected = 0
    cursor = services.db.upload_chunks.find({"upload_id": upload["_id"]}).sort("offset", 1).batch_size(4)
    async for piece in cursor:
        if piece["offset"] != expected:
            raise Conflict("Stored upload pieces are not contiguous; restart the upload")
        spool.write(bytes(piece["data"]))
        expected += len(piece["data"])
    if expected != upload["length"]:
        raise Conflict("Stored upload is shorter than Upload-Length; HEAD it and resume")


async def finish(
    services: Services, upload: Doc, *, photo_id: str | None, problem: dict[str, Any] | None
) -> None:
    """Record the outcome and drop the received pieces (the photo, if any, now holds the bytes)."""
    await services.db.uploads.update_one(
        {"_id": upload["_id"]},
        {
            "$set": {
                "status": "complete" if photo_id else "rejected",
                "photo_id": photo_id,
                "problem": problem,
                "updated_at": services.clock.now(),
            }
        },
    )
    await services.db.upload_chunks.delete_many({"upload_id": upload["_id"]})


async def terminate(services: Services, upload: Doc) -> None:
    await services.db.upload_chunks.delete_many({"upload_id": upload["_id"]})
    await services.db.uploads.delete_one({"_id": upload["_id"]})


async def purge_expired(services: Services) -> int:
    """Drop uploads abandoned past their lifetime, with their pieces."""
    now = services.clock.now()
    ids = [doc["_id"] async for doc in services.db.uploads.find({"expires_at": {"$lte": now}}, {"_id": 1})]
    if ids:
        await services.db.upload_chunks.delete_many({"upload_id": {"$in": ids}})
        await services.db.uploads.delete_many({"_id": {"$in": ids}})
    return len(ids)
