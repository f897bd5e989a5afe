"""Event payloads of the photo area."""

from __future__ import annotations

from pydantic import BaseModel

from schemas.events import event


@event("photo.uploaded")
class PhotoUploaded(BaseModel):
    photo_id: str
    owner_type: str
    audit_id: str | None = None
    rectification_id: str | None = None
    item_id: str | None = None
    sha256: str
    flags: list[str]


@event("photo.deleted")
class PhotoDeleted(BaseModel):
    photo_id: str
    owner_type: str
    audit_id: str | None = None
    rectification_id: str | None = None
    item_id: str | None = None


@event("photo.purged")
class PhotoPurged(BaseModel):
    photo_id: str
    audit_id: str | None = None
    released_at: str | None = None
    bytes_freed: int
