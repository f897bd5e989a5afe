"""Request and response shapes of photo evidence and resumable uploads."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field, field_validator

from schemas.common import StrictModel

OwnerType = Literal["audit", "rectification", "appeal"]


class GeoPoint(BaseModel):
    lat: float
    lon: float


class Device(BaseModel):
    make: str | None = None
    model: str | None = None


class ClientLocation(StrictModel):
    """Where the phone said it was when the photo was taken (browsers strip GPS from the file itself)."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)


class DeviceReport(StrictModel):
    """What the phone reported of a capture, beside the file: a weaker signal than EXIF (the phone's clock and
    position are its own word), kept apart from it and never shown to branch roles."""

    client_captured_at: AwareDatetime | None = None
    client_location: ClientLocation | None = None


class PhotoPublic(BaseModel):
    """A photo's metadata. `gps` and `device` are never shown to branch roles, nor, for audit evidence,
    who took it and when (the branch sees the visit's date on the audit, never a time)."""

    id: str
    sha256: str
    size: int
    media_type: str
    width: int
    height: int
    owner_type: OwnerType
    audit_id: str | None = None
    item_id: str | None = None
    rectification_id: str | None = None
    finding_id: str | None = Field(default=None, description="The appealed finding (owner_type appeal)")
    branch_id: str
    uploader_id: str | None = Field(description="null for branch roles reading audit evidence")
    uploaded_at: datetime | None = Field(description="null for branch roles reading audit evidence")
    captured_at: datetime | None = Field(default=None, description="null for branch roles reading audit evidence")
    captured_at_source: Literal["exif_offset", "branch_local"] | None = Field(
        default=None,
        description="exif_offset: the camera wrote its UTC offset; branch_local: read as branch time",
    )
    gps: GeoPoint | None = None
    device: Device | None = None
    orientation: int = Field(description="EXIF orientation of the original (1 = upright)")
    phash: str = Field(description="64-bit perceptual hash, hex")
    flags: list[str] = Field(
        description="anti-fraud flags; the photo is kept whatever they say (empty for branch roles on audit evidence)"
    )
    purged: bool = Field(description="bytes removed by the retention purge; metadata kept")
    client_captured_at: datetime | None = Field(
        default=None, description="the phone's own capture time (not EXIF; null for branch roles)"
    )
    client_location: ClientLocation | None = Field(
        default=None, description="the phone's own position at capture (not EXIF; null for branch roles)"
    )
    url: str
    thumbnail_url: str


class PhotoList(BaseModel):
    items: list[PhotoPublic]


class ThumbnailQuery(StrictModel):
    size: int = Field(default=320, description="320 or 1280 (pixels, longest side)")

    @field_validator("size")
    @classmethod
    def known_size(cls, value: int) -> int:
        if value not in (320, 1280):
            raise ValueError("size must be 320 or 1280")
        return value


class UploadStatus(BaseModel):
    """A tus upload as seen outside the tus protocol (progress and the resulting photo)."""

    id: str
    status: Literal["receiving", "complete", "rejected"]
    offset: int
    length: int
    owner_type: OwnerType
    audit_id: str | None = None
    item_id: str | None = None
    rectification_id: str | None = None
    filename: str | None = None
    photo_id: str | None = None
    problem: dict[str, object] | None = None
    created_at: datetime
    expires_at: datetime
