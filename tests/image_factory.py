"""Real images made with Pillow for the photo tests: every accepted format, EXIF variants, hostile files."""

from __future__ import annotations

import io
import struct
import zlib
from datetime import datetime
from typing import Any

import numpy as np
import pillow_heif
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from server.db import Database

# Where the demo's Shanghai Lujiazui branch is (its geofence is 150 m).
LUJIAZUI = (31.2397, 121.4998)
# About 2.5 km away, across the river.
THE_BUND = (31.2401, 121.4737)


def scene(width: int = 640, height: int = 480, seed: int = 0) -> Image.Image:
    """A photo-like picture whose perceptual hash depends on `seed`: coarse blocks, a gradient, some noise."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 255, size=(6, 8, 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(blocks).resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    gradient = np.linspace(0, 40, width, dtype=np.int16)[None, :, None]
    noise = rng.integers(-8, 8, size=(height, width, 3), dtype=np.int16)
    return Image.fromarray(np.clip(big + gradient + noise, 0, 255).astype(np.uint8))


def noisy_scene(width: int, height: int, seed: int = 0, noise: int = 60) -> Image.Image:
    """Harder to compress (for sizing JPEGs to several MB like a phone's)."""
    rng = np.random.default_rng(seed)
    base = np.asarray(scene(width, height, seed), dtype=np.int16)
    return Image.fromarray(np.clip(base + rng.integers(-noise, noise, size=base.shape), 0, 255).astype(np.uint8))


def _dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = (value - degrees - minutes / 60) * 3600
    return IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(round(seconds * 10000), 10000)


def exif_bytes(*, taken: datetime | None = None, offset: str | None = None, gps: tuple[float, float] | None = None,
               orientation: int | None = None, make: str | None = "Apple",
               model: str | None = "iPhone 15 Pro") -> bytes:
    exif = Image.Exif()
    if make:
        exif[0x010F] = make
    if model:
        exif[0x0110] = model
    if orientation:
        exif[0x0112] = orientation
    sub = exif.get_ifd(0x8769)
    if taken:
        sub[0x9003] = taken.strftime("%Y:%m:%d %H:%M:%S")
    if offset:
        sub[0x9011] = offset
    if gps:
        gps_ifd = exif.get_ifd(0x8825)
        gps_ifd[1] = "N" if gps[0] >= 0 else "S"
        gps_ifd[2] = _dms(gps[0])
        gps_ifd[3] = "E" if gps[1] >= 0 else "W"
        gps_ifd[4] = _dms(gps[1])
    return exif.tobytes()


def jpeg(image: Image.Image | None = None, *, exif: bytes | None = None, quality: int = 85, seed: int = 0) -> bytes:
    out = io.BytesIO()
    picture = image if image is not None else scene(seed=seed)
    if exif:
        picture.save(out, "JPEG", quality=quality, exif=exif)
    else:
        picture.save(out, "JPEG", quality=quality)
    return out.getvalue()


def phone_jpeg(*, taken: datetime, offset: str | None = "+08:00", gps: tuple[float, float] | None = LUJIAZUI,
               orientation: int = 1, seed: int = 0, size: tuple[int, int] = (640, 480)) -> bytes:
    """What a phone camera writes: capture time, offset, GPS, make and model."""
    return jpeg(scene(*size, seed=seed), exif=exif_bytes(taken=taken, offset=offset, gps=gps, orientation=orientation))


def png(seed: int = 0, exif: bytes | None = None) -> bytes:
    out = io.BytesIO()
    if exif:
        scene(seed=seed).save(out, "PNG", exif=exif)
    else:
        scene(seed=seed).save(out, "PNG")
    return out.getvalue()


def webp(seed: int = 0, exif: bytes | None = None) -> bytes:
    out = io.BytesIO()
    if exif:
        scene(seed=seed).save(out, "WEBP", quality=80, exif=exif)
    else:
        scene(seed=seed).save(out, "WEBP", quality=80)
    return out.getvalue()


def heic(seed: int = 0, exif: bytes | None = None) -> bytes:
    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    if exif:
        scene(seed=seed).save(out, "HEIF", quality=70, exif=exif)
    else:
        scene(seed=seed).save(out, "HEIF", quality=70)
    return out.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height pixels (a decompression bomb when that is huge)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 1024, 9)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", rows)
            + _png_chunk(b"IEND", b""))


def truncated_jpeg() -> bytes:
    whole = jpeg(seed=3)
    return whole[: len(whole) * 2 // 3]


HTML_PAGE = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"


def jpeg_with_html_appended() -> bytes:
    return jpeg(seed=4) + b"\n" + HTML_PAGE


def jpeg_with_zip_appended() -> bytes:
    import zipfile

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("payload.txt", "not a photo")
    return jpeg(seed=5) + archive.getvalue()


def jpeg_with_prefix() -> bytes:
    return b"GIF89a" + jpeg(seed=6)


def oversized_bytes(size: int) -> bytes:
    """JPEG magic followed by noise: refused for its size before anything decodes it."""
    return b"\xff\xd8\xff\xe0" + np.random.default_rng(1).integers(0, 255, size - 4, dtype=np.uint8).tobytes()


# --- the audits and rectifications photos belong to (inserted directly, as the audits area would) -------


async def user_id(db: Database, username: str) -> str:
    user = await db.users.find_one({"username": username})
    assert user is not None, username
    return str(user["_id"])


async def branch_doc(db: Database, code: str = "SH-LJZ") -> dict[str, Any]:
    found = await db.branches.find_one({"code": code})
    assert found is not None, code
    return dict(found)


async def seed_audit(db: Database, *, started_at: datetime, status: str = "in_progress", auditor: str = "inspector",
                     branch_code: str = "SH-LJZ", **extra: object) -> dict[str, Any]:
    import uuid

    branch = await branch_doc(db, branch_code)
    audit = {"_id": str(uuid.uuid4()), "branch_id": branch["_id"], "region_id": branch["region_id"],
             "auditor_id": await user_id(db, auditor), "auditor_role": "inspector", "status": status,
             "checklist_key": "branch_standard", "checklist_version": 1, "started_at": started_at,
             "checkin": {"at": started_at}, "assignment_id": None, "flags": [], "created_at": started_at, **extra}
    await db.audits.insert_one(audit)
    return audit


async def seed_rectification(db: Database, audit: dict[str, Any], *, status: str = "open") -> dict[str, Any]:
    import uuid

    rect = {"_id": str(uuid.uuid4()), "finding_id": str(uuid.uuid4()), "audit_id": audit["_id"],
            "branch_id": audit["branch_id"], "region_id": audit["region_id"], "item_id": "entrance_clean",
            "severity": "major", "status": status, "assignee_id": None, "photo_ids": [],
            "inspector_id": audit.get("auditor_id")}
    await db.rectifications.insert_one(rect)
    return rect
