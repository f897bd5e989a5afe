"""Deadlines: severity days from the release, in the branch's time zone, ending at the local end of day."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from schemas.checklist import DuePolicy
from server.domain.deadlines import add_working_days, days_for, due_at, local_iso

SHANGHAI = "Asia/Shanghai"
MADRID = "Europe/Madrid"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_default_policy_is_critical_1_major_3_minor_7_days() -> None:
    policy = DuePolicy()
    assert [days_for(policy, s) for s in ("critical", "major", "minor")] == [1, 3, 7]


def test_major_finding_is_due_three_local_days_later_at_18_00() -> None:
    # Released Monday 09:00 in Shanghai -> Thursday 18:00 Shanghai = 10:00 UTC.
    assert due_at(utc(2026, 11, 2, 1), "major", None, SHANGHAI) == utc(2026, 11, 5, 10)


def test_days_count_from_the_local_date_not_the_utc_date() -> None:
    # 20:00 UTC on Monday is already Tuesday 04:00 in Shanghai: one day later is Wednesday.
    assert due_at(utc(2026, 11, 2, 20), "critical", None, SHANGHAI) == utc(2026, 11, 4, 10)
    # The same instant in Madrid is still Monday 21:00: due Tuesday 18:00 CET.
    assert due_at(utc(2026, 11, 2, 20), "critical", None, MADRID) == utc(2026, 11, 3, 17)


def test_madrid_autumn_dst_change_keeps_the_local_end_of_day() -> None:
    # Friday 23 Oct 2026 10:00 CEST; clocks go back on Sunday 25 Oct. Seven days later is Friday 30 Oct,
    # 18:00 CET = 17:00 UTC (a fixed 7 x 24 h from 18:00 CEST would give 16:00 UTC, 17:00 local).
    released = utc(2026, 10, 23, 8)
    deadline = due_at(released, "minor", None, MADRID)
    assert deadline == utc(2026, 10, 30, 17)
    assert local_iso(deadline, MADRID) == "2026-10-30T18:00:00+01:00"


def test_madrid_spring_dst_change_keeps_the_local_end_of_day() -> None:
    # Friday 27 Mar 2026 10:00 CET; clocks go forward on Sunday 29 Mar. Monday 30 Mar 18:00 CEST = 16:00 UTC.
    deadline = due_at(utc(2026, 3, 27, 9), "major", None, MADRID)
    assert deadline == utc(2026, 3, 30, 16)
    assert local_iso(deadline, MADRID) == "2026-03-30T18:00:00+02:00"


def test_working_days_skip_the_weekend() -> None:
    friday = date(2026, 11, 6)
    assert add_working_days(friday, 1) == date(2026, 11, 9)  # Monday
    assert add_working_days(friday, 3) == date(2026, 11, 11)  # Wednesday
    assert add_working_days(date(2026, 11, 7), 1) == date(2026, 11, 9)  # Saturday + 1 -> Monday
    assert add_working_days(friday, 0) == friday
    policy = DuePolicy(critical=1, major=3, minor=5, working_days=True)
    # Released Friday 10:00 Shanghai: critical due Monday 18:00, minor (5 working days) the next Friday.
    released = utc(2026, 11, 6, 2)
    assert due_at(released, "critical", policy, SHANGHAI) == utc(2026, 11, 9, 10)
    assert due_at(released, "minor", policy, SHANGHAI) == utc(2026, 11, 13, 10)
    # Calendar days would land on Saturday.
    assert due_at(released, "critical", DuePolicy(), SHANGHAI) == utc(2026, 11, 7, 10)


def test_end_of_day_is_configurable() -> None:
    deadline = due_at(utc(2026, 11, 2, 1), "critical", None, SHANGHAI, time(23, 59, 59))
    assert local_iso(deadline, SHANGHAI) == "2026-11-03T23:59:59+08:00"


def test_same_day_policy_released_after_closing_moves_to_the_next_day() -> None:
    same_day = DuePolicy(critical=0)
    # Released 10:00 local: due today 18:00.
    assert due_at(utc(2026, 11, 2, 2), "critical", same_day, SHANGHAI) == utc(2026, 11, 2, 10)
    # Released 19:00 local: today's 18:00 has passed, so tomorrow 18:00; never born overdue.
    assert due_at(utc(2026, 11, 2, 11), "critical", same_day, SHANGHAI) == utc(2026, 11, 3, 10)
    # With working days, a Friday evening release moves to Monday.
    friday_evening = utc(2026, 11, 6, 11)
    assert due_at(friday_evening, "critical", DuePolicy(critical=0, working_days=True), SHANGHAI) == utc(
        2026, 11, 9, 10
    )


@pytest.mark.parametrize("severity", ["minor", "major", "critical"])
def test_a_deadline_is_always_after_the_release(severity: str) -> None:
    for hour in range(24):
        released = utc(2026, 10, 24, hour)
        assert due_at(released, severity, DuePolicy(critical=0, major=0, minor=0), MADRID) > released
