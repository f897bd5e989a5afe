"""Thumbnails: JPEGs decoded in draft mode (DCT scaling), so a 12 MP photo is never fully decoded."""

from __future__ import annotations

import io

from PIL import Image, ImageOps

from server.images.inspect import PILLOW_FORMAT
from server.images.sniffing import JPEG, sniff
from server.images.support import open_image

THUMBNAIL_SIZES: tuple[int, ...] = (320, 1280)
# Good enough for a list view or a finding card; thumbnails are re-made from the original if needed.
THUMBNAIL_QUALITY = 82


def make_thumbnail(data: bytes, size: int, *, draft: bool = True) -> bytes:
    """A JPEG no larger than size x size, upright and without any metadata. `draft=False` decodes every
    pixel first (the baseline the benchmark compares draft mode against)."""
    media_type = sniff(data[:32]) or JPEG
    with open_image(io.BytesIO(data), PILLOW_FORMAT[media_type]) as image:
        if draft and media_type == JPEG:
            # libjpeg scales by 1/2, 1/4 or 1/8 while decoding: the smallest scale still >= size.
            image.draft("RGB", (size, size))
        image.load()
        upright = ImageOps.exif_transpose(image)
        upright.info = {}  # no EXIF/XMP (location, device) in thumbnails, whoever looks at them
        upright.thumbnail((size, size), Image.Resampling.LANCZOS)
        rgb = upright if upright.mode == "RGB" else upright.convert("RGB")
        out = io.BytesIO()
        rgb.save(out, "JPEG", quality=THUMBNAIL_QUALITY)
    return out.getvalue()
