"""Anti-fraud flags as pure functions: each flag raised by exactly the facts that should raise it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.photos import fraud

NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
BRANCH = (31.2397, 121.4998)


def facts(**kw: object) -> fraud.PhotoFacts:
    base: dict[str, object] = {
        "has_exif": True, "captured_at": NOW - timedelta(minutes=10), "uploaded_at": NOW, "gps": BRANCH,
        "branch_location": BRANCH, "geofence_m": 150.0, "visit_start": NOW - timedelta(minutes=20),
        "visit_end": NOW, "window_start": NOW - timedelta(days=1),
    }
    base.update(kw)
    return fraud.PhotoFacts(**base)  # type: ignore[arg-type]


def test_a_genuine_photo_raises_no_flag() -> None:
    assert fraud.photo_flags(facts()) == []


def test_no_exif_is_flagged() -> None:
    assert fraud.photo_flags(facts(has_exif=False, captured_at=None, gps=None)) == [fraud.FLAG_NO_EXIF]


@pytest.mark.parametrize(("captured", "flagged"), [
    (timedelta(minutes=-20 - 29), False),  # inside the 30-minute lead-in tolerance
    (timedelta(minutes=-20 - 31), True),   # before the visit started
    (timedelta(hours=-30), True),
])
def test_capture_before_the_visit_is_flagged(captured: timedelta, flagged: bool) -> None:
    result = fraud.photo_flags(facts(captured_at=NOW + captured))
    assert (fraud.FLAG_CAPTURE_OUTSIDE_VISIT in result) is flagged


def test_capture_after_submission_is_outside_the_visit() -> None:
    submitted = NOW - timedelta(hours=2)
    result = fraud.photo_flags(facts(visit_start=NOW - timedelta(hours=3), visit_end=submitted,
                                     captured_at=submitted + timedelta(minutes=30)))
    assert fraud.FLAG_CAPTURE_OUTSIDE_VISIT in result


def test_capture_before_the_assignment_window_is_flagged() -> None:
    result = fraud.photo_flags(facts(window_start=NOW + timedelta(days=1), visit_start=None))
    assert result == [fraud.FLAG_CAPTURE_BEFORE_WINDOW]


def test_gps_outside_the_geofence_is_flagged_by_haversine_distance() -> None:
    near = (BRANCH[0] + 0.001, BRANCH[1])  # about 111 m north
    far = (BRANCH[0] + 0.002, BRANCH[1])  # about 222 m north
    assert 105 < fraud.haversine_m(BRANCH, near) < 117
    assert fraud.photo_flags(facts(gps=near)) == []
    assert fraud.photo_flags(facts(gps=far)) == [fraud.FLAG_GPS_OUTSIDE_GEOFENCE]


def test_haversine_matches_a_known_distance() -> None:
    # Shanghai Lujiazui to Madrid Gran Via is about 10,250 km.
    assert 10_150_000 < fraud.haversine_m(BRANCH, (40.4203, -3.7058)) < 10_350_000


def test_capture_later_than_upload_is_flagged_beyond_clock_skew() -> None:
    assert fraud.photo_flags(facts(captured_at=NOW + timedelta(minutes=4))) == []
    result = fraud.photo_flags(facts(captured_at=NOW + timedelta(hours=1), visit_end=None))
    assert result == [fraud.FLAG_CAPTURE_AFTER_UPLOAD]


def test_duplicates_are_flagged_exact_before_near() -> None:
    assert fraud.photo_flags(facts(same_bytes_elsewhere=True, near_duplicate_elsewhere=True)) == [fraud.FLAG_DUPLICATE]
    assert fraud.photo_flags(facts(near_duplicate_elsewhere=True)) == [fraud.FLAG_NEAR_DUPLICATE]


def test_phash_bands_find_every_hash_within_the_distance() -> None:
    base = 0x9F3A_5C71_0B2E_D486
    for flips in ([0, 9, 18, 27, 36, 45], [63, 62, 61, 60, 59, 58], [5, 15, 25, 35, 45, 55]):
        other = base
        for bit in flips:
            other ^= 1 << bit
        a, b = f"{base:016x}", f"{other:016x}"
        assert fraud.hamming(a, b) == 6 and fraud.is_near_duplicate(a, b)
        assert set(fraud.phash_bands(a)) & set(fraud.phash_bands(b))
    far = f"{base ^ 0x7F:016x}"
    assert not fraud.is_near_duplicate(f"{base:016x}", far)


def test_capture_time_uses_the_exif_offset_else_the_branch_time_zone() -> None:
    local = datetime(2026, 11, 2, 8, 55)
    assert fraud.capture_time(local, "+08:00", "Europe/Madrid") == (
        datetime(2026, 11, 2, 0, 55, tzinfo=UTC), "exif_offset")
    expected = (datetime(2026, 11, 2, 0, 55, tzinfo=UTC), "branch_local")
    assert fraud.capture_time(local, None, "Asia/Shanghai") == expected
    assert fraud.capture_time(local, None, "Europe/Madrid")[0] == datetime(2026, 11, 2, 7, 55, tzinfo=UTC)
    assert fraud.capture_time(local, "garbage", "Asia/Shanghai")[1] == "branch_local"
    assert fraud.capture_time(None, "+08:00", "Asia/Shanghai") == (None, None)
