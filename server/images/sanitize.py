"""The variant branch staff see: upright, and without location, device or any other metadata."""

from __future__ import annotations

import io

from PIL import ImageOps

from server.images.inspect import PILLOW_FORMAT
from server.images.sniffing import JPEG, PNG, WEBP, sniff
from server.images.support import open_image

# Re-encoding is unavoidable once orientation is applied; 92 keeps text on notices legible.
SANITIZED_JPEG_QUALITY = 92
SANITIZED_WEBP_QUALITY = 90


def sanitized_variant(data: bytes) -> tuple[bytes, str]:
    """Re-encode upright with no EXIF/XMP (so no GPS, make, model, serial numbers); keeps the ICC profile.
    HEIC/HEIF becomes JPEG, which every browser can show."""
    media_type = sniff(data[:32]) or JPEG
    with open_image(io.BytesIO(data), PILLOW_FORMAT[media_type]) as image:
        icc = image.info.get("icc_profile")
        upright = ImageOps.exif_transpose(image)
        # Pillow re-writes EXIF and XMP kept in .info (XMP can hold GPS too): start from nothing.
        upright.info = {}
        out = io.BytesIO()
        options: dict[str, object] = {"icc_profile": icc} if icc else {}
        if media_type == PNG:
            target = PNG
            upright.save(out, "PNG", **options)
        elif media_type == WEBP:
            target = WEBP
            upright.save(out, "WEBP", quality=SANITIZED_WEBP_QUALITY, **options)
        else:
            target = JPEG
            rgb = upright if upright.mode in ("RGB", "L") else upright.convert("RGB")
            rgb.save(out, "JPEG", quality=SANITIZED_JPEG_QUALITY, **options)
    return out.getvalue(), target
