"""Derived images kept next to the original in GridFS: thumbnails and the sanitized variant for branch staff.
Each is made once, under a deterministic GridFS id, so retries and concurrent requests converge. They are
written with the files document in one transaction (never through the driver's bucket upload: see
server.storage.photos.put_files)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from server.context import Services
from server.db import Doc
from server.errors import Problem
from server.images.executor import run_image_work
from server.images.sanitize import sanitized_variant
from server.images.thumbnails import make_thumbnails
from server.storage import photos as store

T = TypeVar("T")


class PhotoGone(Problem):
    status, slug, title = 410, "photo-purged", "Photo bytes removed by the retention policy"


async def original_bytes(services: Services, photo: Doc) -> bytes:
    """The whole original (for deriving variants; serving streams instead). Read outside any transaction:
    an original never changes once its photo is recorded."""
    if photo.get("purged") or not photo.get("gridfs_id"):
        raise PhotoGone("This photo's bytes were removed by the retention policy; its metadata remains")
    data = await store.read_file(services.db, photo["gridfs_id"])
    if data is None:
        raise PhotoGone("This photo's bytes were removed by the retention policy; its metadata remains")
    return data


def thumbnail_file_id(photo_id: str, size: int) -> str:
    return f"thumb:{photo_id}:{size}"


def sanitized_file_id(photo_id: str) -> str:
    return f"sanitized:{photo_id}"


async def _in_transaction(services: Services, session: AsyncClientSession | None,
                          work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
    """Run `work` in the caller's transaction, or in one of its own."""
    if session is not None:
        return await work(session)
    async with services.client.start_session() as own:
        try:
            return await own.with_transaction(work)
        except DuplicateKeyError:
            # A concurrent request stored the same deterministic files first: theirs are ours.
            return await work(own)


async def _record_on_photo(services: Services, photo: Doc, changes: dict[str, Any], session: AsyncClientSession,
                           *, read_in_this_transaction: bool) -> None:
    """Note derived files on the photo's record unless the photo was purged. By `_id` alone (secantusd-py
    scans the collection for a filter of two fields): `purged` is checked on the record as read in this
    transaction, so a purge committed meanwhile makes this update conflict and the transaction retry."""
    current = photo if read_in_this_transaction else await services.db.photos.find_one(
        {"_id": photo["_id"]}, {"purged": 1}, session=session)
    if current is None or current.get("purged") is not False:
        return
    await services.db.photos.update_one({"_id": photo["_id"]}, {"$set": changes}, session=session)


async def ensure_thumbnails(
    services: Services, photo: Doc, sizes: tuple[int, ...], session: AsyncClientSession | None = None
) -> dict[int, str]:
    """The GridFS ids of the photo's thumbnails of `sizes`, making the missing ones from one decode of the
    original and storing them, with the photo's record of them, in one transaction. With a `session`, the
    caller read `photo` in that session's transaction."""
    recorded = {int(k): str(v) for k, v in (photo.get("thumbnails") or {}).items()}
    wanted = {size: thumbnail_file_id(photo["_id"], size) for size in sizes}
    if all(size in recorded for size in sizes):
        return {size: recorded[size] for size in sizes}
    made: dict[int, bytes] = {}

    async def store_them(s: AsyncClientSession) -> dict[int, str]:
        stored = await store.existing_file_ids(services.db, list(wanted.values()), session=s)
        missing = [size for size, file_id in wanted.items() if file_id not in stored]
        if missing:
            if not all(size in made for size in missing):
                data = await original_bytes(services, photo)
                made.update(await run_image_work(services.shared, make_thumbnails, data, tuple(missing)))
            now = services.clock.now()
            await store.put_files(services.db, [
                (store.file_document(wanted[size], len(made[size]), f"{photo['_id']}-{size}.jpg",
                                     {"photo_id": photo["_id"], "kind": "thumbnail", "size": size,
                                      "media_type": "image/jpeg"}, now), made[size])
                for size in missing
            ], s)
        changes = {f"thumbnails.{size}": file_id for size, file_id in wanted.items() if size not in recorded}
        await _record_on_photo(services, photo, changes, s, read_in_this_transaction=session is not None)
        return wanted

    return await _in_transaction(services, session, store_them)


async def ensure_thumbnail(
    services: Services, photo: Doc, size: int, session: AsyncClientSession | None = None
) -> str:
    """The GridFS id of the photo's thumbnail of `size`, making and storing it if needed."""
    return (await ensure_thumbnails(services, photo, (size,), session))[size]


async def ensure_sanitized(services: Services, photo: Doc) -> dict[str, Any]:
    """The variant for branch roles ({gridfs_id, size, media_type}), made and cached once."""
    variant = (photo.get("variants") or {}).get("sanitized")
    if variant:
        return dict(variant)
    file_id = sanitized_file_id(photo["_id"])
    files = services.db[f"{store.BUCKET}.files"]
    made: list[tuple[bytes, str]] = []

    async def store_it(s: AsyncClientSession) -> dict[str, Any]:
        stored = await files.find_one({"_id": file_id}, {"length": 1, "metadata.media_type": 1}, session=s)
        if stored is None:
            if not made:
                data = await original_bytes(services, photo)
                made.append(await run_image_work(services.shared, sanitized_variant, data))
            clean, media_type = made[0]
            stored = store.file_document(file_id, len(clean), f"{photo['_id']}-sanitized",
                                         {"photo_id": photo["_id"], "kind": "sanitized", "media_type": media_type,
                                          "sha256": hashlib.sha256(clean).hexdigest()}, services.clock.now())
            await store.put_files(services.db, [(stored, clean)], s)
        found = {
            "gridfs_id": file_id,
            "size": int(stored["length"]),
            "media_type": (stored.get("metadata") or {}).get("media_type", "image/jpeg"),
        }
        await _record_on_photo(services, photo, {"variants.sanitized": found}, s, read_in_this_transaction=False)
        return found

    return await _in_transaction(services, None, store_it)
