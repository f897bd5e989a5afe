"""Thumbnails are made once per photo from its photo.uploaded event, off the upload's request path."""

from __future__ import annotations

from schemas.photo_events import PhotoUploaded
from server.context import UnitOfWork
from server.db import Doc
from server.handlers.base import on, reacting
from server.images.thumbnails import THUMBNAIL_SIZES
from server.photos.variants import ensure_thumbnails
from server.storage import photos as store


async def make_thumbnails(uow: UnitOfWork, uploaded: PhotoUploaded, _event: Doc) -> None:
    """Store every thumbnail size of the uploaded photo from one decode (deterministic GridFS ids make
    retries harmless)."""
    photo = await store.photo(uow.db, uploaded.photo_id, session=uow.session)
    if photo is None or photo.get("purged"):
        return  # deleted or purged before the event got here: nothing to make
    await ensure_thumbnails(uow.services, photo, THUMBNAIL_SIZES, session=uow.session)


HANDLERS = [reacting("photo-thumbnails", on(PhotoUploaded, make_thumbnails))]
