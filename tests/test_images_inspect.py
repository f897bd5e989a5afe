"""Decoding, verifying and describing images; thumbnails in draft mode; the sanitized variant."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from PIL import Image

from server.images import sniffing
from server.images.inspect import MAX_PHOTO_PIXELS, ImageRejected, inspect_image
from server.images.sanitize import sanitized_variant
from server.images.thumbnails import make_thumbnail, make_thumbnails
from tests import image_factory as f

TAKEN = datetime(2026, 11, 2, 8, 55)


def test_jpeg_metadata_is_read_from_exif() -> None:
    facts = inspect_image(f.phone_jpeg(taken=TAKEN, orientation=1))
    assert (facts.media_type, facts.width, facts.height) == ("image/jpeg", 640, 480)
    assert facts.has_exif and facts.captured_local == TAKEN and facts.captured_offset == "+08:00"
    assert facts.gps == pytest.approx(f.LUJIAZUI, abs=1e-6)
    assert (facts.device_make, facts.device_model) == ("Apple", "iPhone 15 Pro")
    assert len(facts.phash) == 16


def test_southern_and_western_coordinates_are_negative() -> None:
    facts = inspect_image(f.jpeg(exif=f.exif_bytes(taken=TAKEN, gps=(-33.8688, -70.6693))))
    assert facts.gps == pytest.approx((-33.8688, -70.6693), abs=1e-6)


def test_jpeg_without_exif_says_so() -> None:
    facts = inspect_image(f.jpeg())
    assert not facts.has_exif and facts.captured_local is None and facts.gps is None and facts.device_make is None


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_is_reported(orientation: int) -> None:
    assert inspect_image(f.phone_jpeg(taken=TAKEN, orientation=orientation)).orientation == orientation


@pytest.mark.parametrize(("make", "media_type"), [
    (f.png, "image/png"), (f.webp, "image/webp"), (f.heic, "image/heic"),
])
def test_other_formats_are_accepted_and_described(make: object, media_type: str) -> None:
    data = make(exif=f.exif_bytes(taken=TAKEN, gps=f.LUJIAZUI))  # type: ignore[operator]
    facts = inspect_image(data)
    assert facts.media_type == media_type and facts.has_exif and facts.captured_local == TAKEN
    assert facts.gps == pytest.approx(f.LUJIAZUI, abs=1e-6)
    assert sniffing.sniff(data[:32]) == media_type


def test_the_same_scene_in_any_format_has_a_near_identical_perceptual_hash() -> None:
    from server.photos.fraud import hamming

    hashes = [inspect_image(make(seed=7)).phash for make in (f.png, f.webp, f.heic)]
    hashes.append(inspect_image(f.jpeg(seed=7, quality=60)).phash)
    assert max(hamming(hashes[0], h) for h in hashes) <= 6
    assert hamming(hashes[0], inspect_image(f.png(seed=8)).phash) > 6


@pytest.mark.parametrize(("data", "status", "words"), [
    (b"", 422, "empty"),
    (f.HTML_PAGE, 415, "not a JPEG"),
    (f.truncated_jpeg(), 422, "end marker"),
    (f.jpeg_with_html_appended(), 422, "SCRIPT"),
    (f.jpeg_with_zip_appended(), 422, "ZIP"),
    (f.jpeg_with_prefix(), 415, "not a JPEG"),
    (f.png_declaring(50_000, 50_000), 422, "decompression bomb"),
    (f.png_declaring(9_000, 8_000), 422, f"more than the {MAX_PHOTO_PIXELS}"),
    (f.png(seed=2)[:3000] + f.png(seed=2)[-12:], 422, "truncated"),
    (b"%PDF-1.7\n" + b"x" * 100, 415, "not a JPEG"),
])
def test_hostile_and_broken_files_are_refused_with_a_reason(data: bytes, status: int, words: str) -> None:
    with pytest.raises(ImageRejected) as refused:
        inspect_image(data)
    assert refused.value.status == status
    assert words in refused.value.reason


def test_a_truncated_png_is_found_by_fully_decoding_it() -> None:
    whole = f.png(seed=2)
    with pytest.raises(ImageRejected, match="truncated"):
        inspect_image(whole[: len(whole) // 2] + whole[-12:])  # IEND present: only the decoder can tell


def test_phone_trailers_of_zero_padding_are_accepted() -> None:
    assert inspect_image(f.jpeg(seed=1) + b"\x00" * 64).media_type == "image/jpeg"


def test_thumbnails_fit_the_size_and_are_upright_without_metadata() -> None:
    data = f.phone_jpeg(taken=TAKEN, orientation=6, size=(2000, 1500))
    for size in (320, 1280):
        with Image.open(io.BytesIO(make_thumbnail(data, size))) as thumb:
            assert max(thumb.size) == size
            assert thumb.size[1] > thumb.size[0]  # orientation 6: portrait once applied
            assert len(thumb.getexif()) == 0


def test_draft_mode_decodes_a_reduced_image() -> None:
    data = f.jpeg(f.scene(4000, 3000))
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (320, 320))
        assert image.size == (500, 375)  # libjpeg scaled by 1/8 while decoding
    with Image.open(io.BytesIO(make_thumbnail(data, 320))) as thumb:
        assert thumb.size == (320, 240)


def test_sanitized_variant_has_no_location_or_device_and_is_upright() -> None:
    for data in (f.phone_jpeg(taken=TAKEN, orientation=6),
                 f.heic(exif=f.exif_bytes(taken=TAKEN, gps=f.LUJIAZUI, orientation=6))):
        clean, media_type = sanitized_variant(data)
        assert media_type == "image/jpeg"
        with Image.open(io.BytesIO(clean)) as image:
            exif = image.getexif()
            assert exif.get_ifd(0x8825) == {} and 0x010F not in exif and 0x0110 not in exif
            assert "xmp" not in image.info
            assert image.size == (480, 640)
    clean_png, media_type = sanitized_variant(f.png(exif=f.exif_bytes(taken=TAKEN, gps=f.LUJIAZUI)))
    assert media_type == "image/png"
    with Image.open(io.BytesIO(clean_png)) as image:
        assert image.getexif().get_ifd(0x8825) == {}


def test_every_thumbnail_size_comes_from_one_decode_and_matches_its_own() -> None:
    data = f.phone_jpeg(taken=TAKEN, orientation=6, size=(2000, 1500))
    both = make_thumbnails(data, (320, 1280))
    for size in (320, 1280):
        alone_bytes = make_thumbnail(data, size)
        with Image.open(io.BytesIO(both[size])) as together, Image.open(io.BytesIO(alone_bytes)) as alone:
            assert together.size == alone.size and max(together.size) == size
            assert together.size[1] > together.size[0]
            assert len(together.getexif()) == 0
