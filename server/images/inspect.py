"""Decode, verify and describe an uploaded image (run in the image executor, never on the event loop)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import imagehash
from PIL import Image, ImageFile

from server.images.sniffing import HEIC, HEIF, JPEG, PNG, WEBP, container_problem, sniff
from server.images.support import open_image

# Phones top out at 48-50 MP; anything above this is refused before a single pixel is decoded, so a
# small file declaring huge dimensions (a decompression bomb) cannot make us allocate gigabytes.
MAX_PHOTO_PIXELS = 64_000_000
# JPEG validation decodes every entropy-coded byte (so truncation is found) but runs the inverse DCT at
# a reduced scale (1/8 for phone photos) and in grey (the luma the perceptual hash uses, without colour
# conversion): still far more than the 32x32 pixels phash reads, a fraction of the work of a full decode.
VALIDATION_DRAFT_SIZE = (256, 256)
VALIDATION_DRAFT_MODE = "L"

EXIF_IFD = 0x8769
GPS_IFD = 0x8825
TAG_MAKE = 0x010F
TAG_MODEL = 0x0110
TAG_ORIENTATION = 0x0112
TAG_DATETIME_ORIGINAL = 0x9003
TAG_DATETIME_DIGITIZED = 0x9004
TAG_OFFSET_TIME_ORIGINAL = 0x9011
EXIF_TIME_FORMAT = "%Y:%m:%d %H:%M:%S"

PILLOW_FORMAT = {JPEG: "JPEG", PNG: "PNG", WEBP: "WEBP", HEIC: "HEIF", HEIF: "HEIF"}


class ImageRejected(Exception):
    """The upload is not an image we accept; `status` is 415 (not an image type) or 422 (bad image)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class ImageFacts:
    """What the bytes say about the photo (times as written by the camera, not yet interpreted)."""

    media_type: str
    width: int
    height: int
    orientation: int
    has_exif: bool
    captured_local: datetime | None
    captured_offset: str | None
    gps: tuple[float, float] | None
    device_make: str | None
    device_model: str | None
    phash: str


def inspect_image(data: bytes) -> ImageFacts:
    """Decode the whole image and read its metadata; raises ImageRejected with a reason for the client."""
    if not data:
        raise ImageRejected(422, "is empty (zero bytes)")
    media_type = sniff(data[:32])
    if media_type is None:
        raise ImageRejected(415, "is not a JPEG, PNG, WebP or HEIC/HEIF image (judged from its bytes)")
    problem = container_problem(data, media_type)
    if problem:
        raise ImageRejected(422, problem)
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("ImageFile.LOAD_TRUNCATED_IMAGES must stay False: truncated photos are refused")
    try:
        with open_image(io.BytesIO(data), PILLOW_FORMAT[media_type]) as image:
            width, height = image.size
            if width * height > MAX_PHOTO_PIXELS:
                raise ImageRejected(
                    422, f"has {width}x{height} pixels, more than the {MAX_PHOTO_PIXELS} allowed"
                )
            if getattr(image, "n_frames", 1) > 1 and media_type in (PNG, WEBP):
                raise ImageRejected(422, "is animated; upload a still photo")
            exif = image.getexif()
            orientation = int(image.info.get("original_orientation") or exif.get(TAG_ORIENTATION) or 1)
            if media_type == JPEG:
                image.draft(VALIDATION_DRAFT_MODE, VALIDATION_DRAFT_SIZE)
            image.load()  # decodes everything: truncated or corrupt data raises here
            phash = str(imagehash.phash(_hashable(image)))
            facts = _metadata(exif)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(
            422, f"declares more than {MAX_PHOTO_PIXELS} pixels (decompression bomb)"
        ) from None
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, struct.error... for bad data
        raise ImageRejected(422, f"could not be decoded as {media_type} ({_short(exc)})") from None
    return ImageFacts(
        media_type=media_type,
        width=width,
        height=height,
        orientation=orientation if 1 <= orientation <= 8 else 1,
        phash=phash,
        **facts,
    )


def _hashable(image: Image.Image) -> Image.Image:
    if image.mode in ("RGB", "L"):
        return image
    return image.convert("RGBA" if image.mode in ("P", "PA", "LA", "RGBA") else "RGB")


def _metadata(exif: Image.Exif) -> dict[str, Any]:
    sub = exif.get_ifd(EXIF_IFD)
    gps_ifd = exif.get_ifd(GPS_IFD)
    raw_time = sub.get(TAG_DATETIME_ORIGINAL) or sub.get(TAG_DATETIME_DIGITIZED)
    captured: datetime | None = None
    if isinstance(raw_time, str):
        try:
            captured = datetime.strptime(raw_time.strip("\x00 ")[:19], EXIF_TIME_FORMAT)
        except ValueError:
            captured = None
    offset = sub.get(TAG_OFFSET_TIME_ORIGINAL)
    return {
        "has_exif": len(exif) > 0 or bool(sub) or bool(gps_ifd),
        "captured_local": captured,
        "captured_offset": offset.strip("\x00 ")
        if isinstance(offset, str) and offset.strip("\x00 ")
        else None,
        "gps": _gps(gps_ifd),
        "device_make": _text(exif.get(TAG_MAKE)),
        "device_model": _text(exif.get(TAG_MODEL)),
    }


def _gps(ifd: dict[int, Any]) -> tuple[float, float] | None:
    try:
        lat = _degrees(ifd[2]) * (-1 if str(ifd.get(1, "N")).upper().startswith("S") else 1)
        lon = _degrees(ifd[4]) * (-1 if str(ifd.get(3, "E")).upper().startswith("W") else 1)
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return round(lat, 7), round(lon, 7)


def _degrees(value: Any) -> float:
    d, m, s = (float(part) for part in value)
    return d + m / 60 + s / 3600


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    cleaned = value.strip("\x00 ")
    return cleaned[:100] or None


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]
