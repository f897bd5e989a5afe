"""What an upload is, decided from its bytes alone (never from its name or Content-Type)."""

from __future__ import annotations

import re
import struct

JPEG = "image/jpeg"
PNG = "image/png"
WEBP = "image/webp"
HEIC = "image/heic"
HEIF = "image/heif"
ACCEPTED_TYPES: tuple[str, ...] = (JPEG, PNG, WEBP, HEIC, HEIF)

# How many leading bytes sniff() needs to see.
SNIFF_BYTES = 32

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"})
_HEIF_BRANDS = frozenset({b"mif1", b"msf1"})

# Byte sequences that never belong in a photo but make it a second, dangerous file as well (HTML or
# script for browsers that sniff). Lower-cased. Long markers are searched everywhere: at 7+ bytes a
# chance match in compressed image data is below one in 10^8 per photo.
HOSTILE_MARKERS: tuple[bytes, ...] = (b"<script", b"<!doctype", b"<iframe", b"javascript:", b"<svg xmlns")
# Shorter markers only where a second file's header or trailer would sit: the first and last
# EDGE_BYTES of the upload (a chance match there is about one in a million photos).
EDGE_MARKERS: tuple[bytes, ...] = (b"<html", b"<body", b"<?php", b"%pdf-")
EDGE_BYTES = 64 * 1024
# The hostile markers are looked for in windows of this many bytes, lower-cased one window at a time
# (never a lower-cased copy of the whole upload), overlapping by a marker's length so none is missed.
SCAN_WINDOW_BYTES = 1024 * 1024
_SCAN_OVERLAP = max(len(m) for m in HOSTILE_MARKERS) - 1
_ASCII_LOWER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")
# Markers starting with "<" are found in one pass (the search skips to each "<"); the rest one by one.
_ANGLE_MARKERS = tuple(m for m in HOSTILE_MARKERS if m.startswith(b"<"))
_ANGLE_PATTERN = re.compile(b"<(?:" + b"|".join(re.escape(m[1:]) for m in _ANGLE_MARKERS) + b")")
_OTHER_MARKERS = tuple(m for m in HOSTILE_MARKERS if not m.startswith(b"<"))
# A ZIP's end-of-central-directory record sits within its last 64 KB + 22 bytes.
_ZIP_EOCD = b"PK\x05\x06"
_ZIP_CENTRAL = b"PK\x01\x02"
_ZIP_TAIL = 65535 + 22


def sniff(head: bytes) -> str | None:
    """The media type the leading bytes announce, or None if not an accepted image type."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(_PNG_MAGIC):
        return PNG
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if len(head) >= 12 and head[4:8] == b"ftyp":
        major = head[8:12]
        if major in _HEIC_BRANDS:
            return HEIC
        if major in _HEIF_BRANDS:
            return HEIF
    return None


def container_problem(data: bytes, media_type: str) -> str | None:
    """Why the bytes are not exactly one image file of their type (trailing data, polyglots), or None."""
    hostile = _hostile_markers(data)
    for marker in HOSTILE_MARKERS:
        if marker in hostile:
            return f"contains embedded {_marker_name(marker)} content"
    edges = data[:EDGE_BYTES].lower() + b"\x00" + data[-EDGE_BYTES:].lower()
    for marker in EDGE_MARKERS:
        if marker in edges:
            return f"contains embedded {_marker_name(marker)} content"
    if _looks_like_zip(data):
        return "is also a ZIP archive"
    if media_type == JPEG:
        return _jpeg_trailer_problem(data)
    if media_type == PNG:
        return None if data.endswith(_PNG_IEND) else "has data after the PNG end marker"
    if media_type == WEBP:
        declared = struct.unpack("<I", data[4:8])[0] + 8
        declared += declared % 2  # RIFF chunks are padded to even sizes
        if len(data) > declared:
            return "has data after the WebP container"
        return None
    return _bmff_problem(data)


def _hostile_markers(data: bytes) -> set[bytes]:
    """Every HOSTILE_MARKERS entry found anywhere in `data`, case-insensitively."""
    found: set[bytes] = set()
    for start in range(0, len(data), SCAN_WINDOW_BYTES):
        window = data[start : start + SCAN_WINDOW_BYTES + _SCAN_OVERLAP].translate(_ASCII_LOWER)
        found.update(match.group() for match in _ANGLE_PATTERN.finditer(window))
        found.update(marker for marker in _OTHER_MARKERS if marker in window)
    return found


def _jpeg_trailer_problem(data: bytes) -> str | None:
    # Phones append more complete JPEGs after the first EOI (MPF depth maps, HDR gain maps), and
    # some pad with zeros; anything else after the last EOI marker is a second payload.
    end = data.rfind(b"\xff\xd9")
    if end < 0:
        return "has no JPEG end marker"
    trailer = data[end + 2 :]
    if trailer.strip(b"\x00"):
        return "has data after the JPEG end marker"
    return None


def _bmff_problem(data: bytes) -> str | None:
    """HEIF is a sequence of ISO BMFF boxes that must cover the file exactly."""
    offset = 0
    total = len(data)
    while offset < total:
        if total - offset < 8:
            return "has data after the HEIF boxes"
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            if total - offset < 16:
                return "has a truncated HEIF box"
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        elif size == 0:
            size = total - offset
        if size < 8 or offset + size > total:
            return "has a truncated or malformed HEIF box"
        if not kind.isalnum() and kind not in (b"    ",):
            return "has data after the HEIF boxes"
        offset += size
    return None


def _marker_name(marker: bytes) -> str:
    return marker.decode("latin-1").strip("<!?%:-").split()[0].upper()


def _looks_like_zip(data: bytes) -> bool:
    """A ZIP appended to (or wrapped around) the image: an end record whose central directory is where
    it says, which is how unzip finds archives inside other files."""
    tail_start = max(0, len(data) - _ZIP_TAIL)
    at = data.rfind(_ZIP_EOCD, tail_start)
    while at >= 0:
        if at + 22 <= len(data):
            cd_size, cd_offset = struct.unpack("<II", data[at + 12 : at + 20])
            for start in (cd_offset, at - cd_size):
                if 0 <= start < at and data[start : start + 4] == _ZIP_CENTRAL:
                    return True
        at = data.rfind(_ZIP_EOCD, tail_start, at)
    return False
