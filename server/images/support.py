"""Opening images safely: only the expected decoder, HEIF registered once."""

from __future__ import annotations

import threading
from typing import IO

import pillow_heif
from PIL import Image

_heif_lock = threading.Lock()
_heif_registered = False


def register_heif() -> None:
    """Teach Pillow to read HEIC/HEIF (what iPhones send); idempotent and thread-safe."""
    global _heif_registered
    with _heif_lock:
        if not _heif_registered:
            pillow_heif.register_heif_opener()
            _heif_registered = True


def open_image(stream: IO[bytes], pillow_format: str) -> Image.Image:
    """Open with only the decoder the sniffed type calls for, so no other plugin gets to parse it."""
    if pillow_format == "HEIF":
        register_heif()
    return Image.open(stream, formats=[pillow_format])
