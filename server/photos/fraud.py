"""Anti-fraud flags for a photo, as pure functions (no I/O): the pipeline gathers the facts, these decide."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FLAG_NO_EXIF = "photo_no_exif"
FLAG_CAPTURE_OUTSIDE_VISIT = "photo_capture_outside_visit"
FLAG_CAPTURE_BEFORE_WINDOW = "photo_capture_before_assignment_window"
FLAG_GPS_OUTSIDE_GEOFENCE = "photo_gps_outside_geofence"
FLAG_DUPLICATE = "photo_duplicate_elsewhere"
FLAG_NEAR_DUPLICATE = "photo_near_duplicate_elsewhere"
FLAG_CAPTURE_AFTER_UPLOAD = "photo_capture_after_upload"
ALL_FLAGS: tuple[str, ...] = (
    FLAG_NO_EXIF,
    FLAG_CAPTURE_OUTSIDE_VISIT,
    FLAG_CAPTURE_BEFORE_WINDOW,
    FLAG_GPS_OUTSIDE_GEOFENCE,
    FLAG_DUPLICATE,
    FLAG_NEAR_DUPLICATE,
    FLAG_CAPTURE_AFTER_UPLOAD,
)

# Inspectors photograph the entrance and queue just before starting the audit on the phone.
VISIT_TOLERANCE = timedelta(minutes=30)
# Phone clocks drift and camera clocks are set by hand; a few minutes "in the future" is not fraud.
CLOCK_SKEW_TOLERANCE = timedelta(minutes=5)
# Perceptual hashes within this Hamming distance (of 64 bits) are the same scene re-encoded,
# resized or lightly edited; unrelated photos are typically 20+ apart.
NEAR_DUPLICATE_DISTANCE = 6
# Split the 64-bit hash into DISTANCE + 1 bands: two hashes within DISTANCE bits agree exactly on at
# least one band (pigeonhole), so an index on the bands finds every candidate without a scan.
PHASH_BAND_BITS: tuple[int, ...] = (10, 9, 9, 9, 9, 9, 9)
EARTH_RADIUS_M = 6_371_008.8

_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


@dataclass(frozen=True)
class PhotoFacts:
    """Everything the flags depend on, gathered by the upload pipeline."""

    has_exif: bool
    captured_at: datetime | None
    uploaded_at: datetime
    gps: tuple[float, float] | None
    branch_location: tuple[float, float] | None
    geofence_m: float | None
    visit_start: datetime | None = None
    visit_end: datetime | None = None
    window_start: datetime | None = None
    same_bytes_elsewhere: bool = False
    near_duplicate_elsewhere: bool = False


def photo_flags(facts: PhotoFacts) -> list[str]:
    """The anti-fraud flags the facts raise, in a stable order."""
    flags: list[str] = []
    if not facts.has_exif:
        flags.append(FLAG_NO_EXIF)
    if capture_outside_visit(facts.captured_at, facts.visit_start, facts.visit_end):
        flags.append(FLAG_CAPTURE_OUTSIDE_VISIT)
    if capture_before_window(facts.captured_at, facts.window_start):
        flags.append(FLAG_CAPTURE_BEFORE_WINDOW)
    if gps_outside_geofence(facts.gps, facts.branch_location, facts.geofence_m):
        flags.append(FLAG_GPS_OUTSIDE_GEOFENCE)
    if facts.same_bytes_elsewhere:
        flags.append(FLAG_DUPLICATE)
    elif facts.near_duplicate_elsewhere:
        flags.append(FLAG_NEAR_DUPLICATE)
    if capture_after_upload(facts.captured_at, facts.uploaded_at):
        flags.append(FLAG_CAPTURE_AFTER_UPLOAD)
    return flags


def capture_time(
    local: datetime | None, offset: str | None, branch_timezone: str | None
) -> tuple[datetime | None, str | None]:
    """The capture instant in UTC and how it was read: with the camera's offset, or as branch local time."""
    if local is None:
        return None, None
    parsed = parse_offset(offset)
    if parsed is not None:
        return local.replace(tzinfo=parsed).astimezone(UTC), "exif_offset"
    try:
        zone = ZoneInfo(branch_timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return local.replace(tzinfo=zone).astimezone(UTC), "branch_local"


def parse_offset(offset: str | None) -> timezone | None:
    """An EXIF OffsetTime value ("+08:00") as a timezone, None when absent or malformed."""
    if not offset:
        return None
    match = _OFFSET.match(offset.strip())
    if not match:
        return None
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta > timedelta(hours=14):
        return None
    return timezone(-delta if sign == "-" else delta)


def capture_outside_visit(
    captured_at: datetime | None,
    visit_start: datetime | None,
    visit_end: datetime | None,
    tolerance: timedelta = VISIT_TOLERANCE,
) -> bool:
    """Taken well before the audit started, or after it ended (submission, or the upload itself)."""
    if captured_at is None or visit_start is None:
        return False
    if captured_at < visit_start - tolerance:
        return True
    return visit_end is not None and captured_at > visit_end + CLOCK_SKEW_TOLERANCE


def capture_before_window(captured_at: datetime | None, window_start: datetime | None) -> bool:
    """Taken before the assigned visit window opened (an old photo passed off as this visit's)."""
    return (
        captured_at is not None and window_start is not None and captured_at < window_start - VISIT_TOLERANCE
    )


def capture_after_upload(captured_at: datetime | None, uploaded_at: datetime) -> bool:
    """A capture time later than the moment we received the photo: the camera clock or the EXIF was edited."""
    return captured_at is not None and captured_at > uploaded_at + CLOCK_SKEW_TOLERANCE


def gps_outside_geofence(
    gps: tuple[float, float] | None, branch_location: tuple[float, float] | None, geofence_m: float | None
) -> bool:
    """The photo's GPS position is farther from the branch than its geofence radius."""
    if gps is None or branch_location is None or geofence_m is None:
        return False
    return haversine_m(gps, branch_location) > geofence_m


def haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in metres between two (lat, lon) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def hamming(a_hex: str, b_hex: str) -> int:
    """Bits that differ between two hex perceptual hashes."""
    return (int(a_hex, 16) ^ int(b_hex, 16)).bit_count()


def is_near_duplicate(a_hex: str, b_hex: str) -> bool:
    return hamming(a_hex, b_hex) <= NEAR_DUPLICATE_DISTANCE


def phash_bands(phash_hex: str) -> list[str]:
    """Index keys for near-duplicate lookup: "<band>:<bits as hex>" for each band of the 64-bit hash."""
    value = int(phash_hex, 16)
    bands: list[str] = []
    shift = 64
    for index, bits in enumerate(PHASH_BAND_BITS):
        shift -= bits
        bands.append(f"{index}:{(value >> shift) & ((1 << bits) - 1):x}")
    return bands
