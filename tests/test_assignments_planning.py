"""Assignment planning: windows inside local opening hours, rotation rules and balanced load (no database)."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from server.domain.assignments import (
    TRAVEL,
    BranchSlotInfo,
    Person,
    PlanningError,
    Rotation,
    plan_visits,
    slots_for_branch,
)

SHANGHAI = BranchSlotInfo("b-sh", "r1", "Asia/Shanghai", time(9), time(17), (0, 1, 2, 3, 4))
MADRID = BranchSlotInfo("b-mad", "r2", "Europe/Madrid", time(8, 30), time(14, 30), (0, 1, 2, 3, 4, 5))
BRANCHES = [SHANGHAI, MADRID, BranchSlotInfo("b-3", "r1", "Asia/Shanghai"), BranchSlotInfo("b-4", "r2", "UTC")]


def test_windows_fall_inside_local_opening_hours_on_opening_days() -> None:
    for branch in (SHANGHAI, MADRID):
        slots = slots_for_branch(branch, date(2026, 11, 1), date(2026, 11, 30), 4, salt="p")
        assert len(slots) == 4
        zone = ZoneInfo(branch.timezone)
        for slot in slots:
            start, end = slot.window_start.astimezone(zone), slot.window_end.astimezone(zone)
            assert start.weekday() in branch.weekdays
            assert branch.opens <= start.time() and end.time() <= branch.closes
            assert (end - start).total_seconds() == 7200
        # spread over the period: one visit in each quarter
        days = [s.window_start.astimezone(zone).day for s in slots]
        assert days == sorted(days) and days[0] <= 8 and days[-1] >= 23


def test_nobody_audits_their_own_home_branch() -> None:
    people = [Person("p1", "b-sh"), Person("p2", "b-mad"), Person("p3", None)]
    visits = plan_visits(
        BRANCHES, people, starts_on=date(2026, 11, 1), ends_on=date(2026, 11, 30), visits_per_branch=3, covert=True
    )
    homes = {p.id: p.home_branch_id for p in people}
    assert visits and all(homes[v.assignee_id] != v.slot.branch_id for v in visits)


def test_no_shopper_visits_the_same_branch_twice_in_a_row_across_programs() -> None:
    people = [Person("s1"), Person("s2"), Person("s3")]
    rotation = Rotation(last_visitor={"b-sh": "s1"})
    visits = plan_visits(
        [SHANGHAI],
        people,
        starts_on=date(2026, 11, 1),
        ends_on=date(2026, 12, 31),
        visits_per_branch=6,
        covert=True,
        rotation=rotation,
    )
    sequence = ["s1", *[v.assignee_id for v in visits]]
    assert all(a != b for a, b in itertools_pairs(sequence))


def itertools_pairs(items: list[str]) -> list[tuple[str, str]]:
    return list(itertools.pairwise(items))


def test_covert_planning_fails_when_only_the_last_shopper_is_left() -> None:
    with pytest.raises(PlanningError):
        plan_visits(
            [SHANGHAI],
            [Person("s1")],
            starts_on=date(2026, 11, 1),
            ends_on=date(2026, 11, 30),
            visits_per_branch=2,
            covert=True,
        )
    # inspectors may repeat when nobody else is available
    visits = plan_visits(
        [SHANGHAI],
        [Person("i1")],
        starts_on=date(2026, 11, 1),
        ends_on=date(2026, 11, 30),
        visits_per_branch=2,
        covert=False,
    )
    assert [v.assignee_id for v in visits] == ["i1", "i1"]


def test_load_is_balanced_least_loaded_first_and_deterministic() -> None:
    people = [Person(f"p{i}") for i in range(3)]
    kwargs = {"starts_on": date(2026, 11, 1), "ends_on": date(2026, 11, 30), "visits_per_branch": 3, "covert": False}
    visits = plan_visits(BRANCHES, people, rotation=Rotation(load={"p0": 4}), **kwargs)  # type: ignore[arg-type]
    counts = Counter(v.assignee_id for v in visits)
    total = {p: counts[p] + (4 if p == "p0" else 0) for p in ("p0", "p1", "p2")}
    assert max(total.values()) - min(total.values()) <= 1
    again = plan_visits(BRANCHES, people, rotation=Rotation(load={"p0": 4}), **kwargs)  # type: ignore[arg-type]
    assert again == visits


def test_a_branch_closed_all_period_cannot_be_planned() -> None:
    weekend_only = BranchSlotInfo("b-w", "r", "UTC", weekdays=(5, 6))
    with pytest.raises(PlanningError):
        slots_for_branch(weekend_only, date(2026, 11, 2), date(2026, 11, 6), 1)


def _apart(windows: list[tuple[datetime, datetime]]) -> bool:
    """No two windows come within TRAVEL of each other."""
    ordered = sorted(windows)
    return all(a_end + TRAVEL <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(ordered))


@pytest.mark.parametrize(("branch_count", "last_day"), [(12, 6), (6, 2)])
def test_one_person_is_never_booked_for_two_visits_at_once(branch_count: int, last_day: int) -> None:
    # Few people for many branches: 12 visits in a week, or 6 in one day for 3 people (whose preferred
    # windows, unchecked, give one person back-to-back and overlapping visits).
    branches = [BranchSlotInfo(f"b-{i:02}", "r1", "Asia/Shanghai") for i in range(branch_count)]
    people = [Person("p1"), Person("p2"), Person("p3")]
    visits = plan_visits(branches, people, starts_on=date(2026, 11, 2), ends_on=date(2026, 11, last_day),
                         visits_per_branch=1, covert=False, salt="week")
    assert len(visits) == branch_count
    by_person: dict[str, list[tuple[datetime, datetime]]] = {}
    for visit in visits:
        by_person.setdefault(visit.assignee_id, []).append((visit.slot.window_start, visit.slot.window_end))
    assert all(_apart(windows) for windows in by_person.values())
    assert [v.slot.window_start for v in visits] == sorted(v.slot.window_start for v in visits)


def test_a_clashing_visit_moves_to_another_window() -> None:
    slot = slots_for_branch(SHANGHAI, date(2026, 11, 2), date(2026, 11, 2), 1, salt="x")[0]
    # The only inspector is already booked (by another program) across the preferred window.
    rotation = Rotation(booked={"p1": [(slot.window_start, slot.window_end)]})
    [visit] = plan_visits([SHANGHAI], [Person("p1")], starts_on=date(2026, 11, 2), ends_on=date(2026, 11, 2),
                          visits_per_branch=1, covert=False, rotation=rotation, salt="x")
    assert visit.slot.window_start != slot.window_start
    assert visit.slot.window_start.date() == slot.window_start.date() and visit.slot.visit_no == 0  # one-day period
    assert _apart([(slot.window_start, slot.window_end), (visit.slot.window_start, visit.slot.window_end)])
    local = visit.slot.window_start.astimezone(ZoneInfo(SHANGHAI.timezone))
    assert SHANGHAI.opens <= local.time()


def test_a_day_with_nobody_free_is_refused_with_a_reason() -> None:
    day = date(2026, 11, 2)
    whole_day = (datetime(2026, 11, 1, 20, tzinfo=UTC), datetime(2026, 11, 2, 12, tzinfo=UTC))
    rotation = Rotation(booked={"p1": [whole_day]})
    with pytest.raises(PlanningError, match="already booked whenever branch b-sh could have visit 1"):
        plan_visits([SHANGHAI], [Person("p1")], starts_on=day, ends_on=day, visits_per_branch=1,
                    covert=False, rotation=rotation)
