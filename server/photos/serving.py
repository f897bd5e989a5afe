"""HTTP caching and byte ranges for photo bytes (RFC 9110), and streaming them out of GridFS."""

from __future__ import annotations

import re

from aiohttp import web

from server.db import Database
from server.storage import photos as store

# Photo bytes never change under an id, but who may see them can: let only the browser cache them.
PHOTO_CACHE_CONTROL = "private, max-age=86400"
STREAM_CHUNK_BYTES = store.GRIDFS_CHUNK_BYTES

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(Exception):
    """The requested range lies outside the representation (answered 416)."""


def strong_etag(sha256: str, variant: str) -> str:
    """A strong validator: the content hash plus which variant (original, sanitized, thumbnail size)."""
    return f'"{sha256[:32]}-{variant}"'


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison: W/ prefixes are ignored, "*" matches anything."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def requested_range(
    range_header: str | None, if_range: str | None, etag: str, size: int
) -> tuple[int, int] | None:
    """(first, last) byte to send, or None for the whole representation. Multiple ranges and a
    stale If-Range get the whole representation, which RFC 9110 allows."""
    if not range_header or (if_range is not None and if_range.strip() != etag):
        return None
    match = _RANGE.match(range_header.strip().replace(" ", ""))
    if not match:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:  # suffix range: the last N bytes
        length = int(last_text)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable()
        return max(0, size - length), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # syntactically invalid ranges are ignored
    if first >= size:
        raise RangeNotSatisfiable()
    last = int(last_text) if last_text else size - 1
    return first, min(last, size - 1)


async def stream_file(
    request: web.Request,
    db: Database,
    file_id: str,
    size: int,
    media_type: str,
    etag: str,
    extra_headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    """200/206/304/416 for one GridFS file, streamed in chunk-sized reads."""
    headers = {
        "ETag": etag,
        "Cache-Control": PHOTO_CACHE_CONTROL,
        "Accept-Ranges": "bytes",
        "X-Content-Type-Options": "nosniff",
        **(extra_headers or {}),
    }
    if not_modified(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    try:
        span = requested_range(request.headers.get("Range"), request.headers.get("If-Range"), etag, size)
    except RangeNotSatisfiable:
        return web.Response(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    first, last = span if span else (0, size - 1)
    response = web.StreamResponse(status=206 if span else 200, headers=headers)
    response.content_type = media_type
    response.content_length = last - first + 1 if size else 0
    if span:
        response.headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    await response.prepare(request)
    if size and request.method != "HEAD":
        grid_out = await store.bucket(db).open_download_stream(file_id)
        await grid_out.seek(first)
        remaining = last - first + 1
        while remaining > 0:
            chunk = await grid_out.read(min(STREAM_CHUNK_BYTES, remaining))
            if not chunk:
                break
            await response.write(chunk)
            remaining -= len(chunk)
    await response.write_eof()
    return response
