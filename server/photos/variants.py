"""Derived images kept next to the original in GridFS: thumbnails and the sanitized variant for branch staff.
Each is made once, under a deterministic GridFS id, so retries and concurrent requests converge."""

from __future__ import annotations

import hashlib
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from server.context import Services
from server.db import Doc
from server.errors import Problem
from server.images.executor import run_image_work
from server.images.sanitize import sanitized_variant
from server.images.thumbnails import make_thumbnail
from server.storage import photos as store


class PhotoGone(Problem):
    status, slug, title = 410, "photo-purged", "Photo bytes removed by the retention policy"


async def original_bytes(services: Services, photo: Doc) -> bytes:
    """The whole original (for deriving variants; serving streams instead)."""
    if photo.get("purged") or not photo.get("gridfs_id"):
        raise PhotoGone("This photo's bytes were removed by the retention policy; its metadata remains")
    stream = await store.bucket(services.db).open_download_stream(photo["gridfs_id"])
    data: bytes = await stream.read()
    return data


def thumbnail_file_id(photo_id: str, size: int) -> str:
    return f"thumb:{photo_id}:{size}"


def sanitized_file_id(photo_id: str) -> str:
    return f"sanitized:{photo_id}"


async def ensure_thumbnail(
    services: Services, photo: Doc, size: int, session: AsyncClientSession | None = None
) -> str:
    """The GridFS id of the photo's thumbnail of `size`, making and storing it if needed."""
    existing = (photo.get("thumbnails") or {}).get(str(size))
    if existing:
        return str(existing)
    file_id = thumbnail_file_id(photo["_id"], size)
    if not await services.db[f"{store.BUCKET}.files"].find_one({"_id": file_id}, {"_id": 1}):
        data = await original_bytes(services, photo)
        thumb = await run_image_work(services.extras, make_thumbnail, data, size)
        await store.ensure_file(
            services.db,
            file_id,
            f"{photo['_id']}-{size}.jpg",
            thumb,
            {"photo_id": photo["_id"], "kind": "thumbnail", "size": size, "media_type": "image/jpeg"},
        )
    await services.db.photos.update_one(
        {"_id": photo["_id"], "purged": False}, {"$set": {f"thumbnails.{size}": file_id}}, session=session
    )
    return file_id


async def ensure_sanitized(services: Services, photo: Doc) -> dict[str, Any]:
    """The variant for branch roles ({gridfs_id, size, media_type}), made and cached once."""
    variant = (photo.get("variants") or {}).get("sanitized")
    if variant:
        return dict(variant)
    file_id = sanitized_file_id(photo["_id"])
    files = services.db[f"{store.BUCKET}.files"]
    stored = await files.find_one({"_id": file_id})
    if stored is None:
        data = await original_bytes(services, photo)
        clean, media_type = await run_image_work(services.extras, sanitized_variant, data)
        await store.ensure_file(
            services.db,
            file_id,
            f"{photo['_id']}-sanitized",
            clean,
            {
                "photo_id": photo["_id"],
                "kind": "sanitized",
                "media_type": media_type,
                "sha256": hashlib.sha256(clean).hexdigest(),
            },
        )
        stored = await files.find_one({"_id": file_id})
    if stored is None:
        raise Problem("The sanitized variant could not be stored")
    variant = {
        "gridfs_id": file_id,
        "size": int(stored["length"]),
        "media_type": (stored.get("metadata") or {}).get("media_type", "image/jpeg"),
    }
    await services.db.photos.update_one(
        {"_id": photo["_id"], "purged": False}, {"$set": {"variants.sanitized": variant}}
    )
    return variant
