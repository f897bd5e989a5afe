"""Planning a program's visits: when (spread over the period and the branch's opening hours, in its own
time zone) and who (rotation: never one's own home branch, never the same shopper twice in a row at a
branch, least-loaded first with a deterministic tie-break)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WINDOW = timedelta(hours=2)


class PlanningError(ValueError):
    """The program cannot be planned as asked (no opening day, nobody eligible)."""


@dataclass(frozen=True)
class BranchSlotInfo:
    id: str
    region_id: str
    timezone: str
    opens: time = time(9, 0)
    closes: time = time(17, 0)
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class Person:
    id: str
    home_branch_id: str | None = None


@dataclass(frozen=True)
class Slot:
    branch_id: str
    region_id: str
    visit_no: int
    window_start: datetime
    window_end: datetime


@dataclass(frozen=True)
class Visit:
    slot: Slot
    assignee_id: str


@dataclass
class Rotation:
    """Who visited each branch last and how much open work everybody has, updated as visits are planned."""

    last_visitor: dict[str, str] = field(default_factory=dict)
    load: dict[str, int] = field(default_factory=dict)


def _stable(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:4], "big")


def parse_hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _opening_day(start: date, end: date, weekdays: Sequence[int], preferred: date) -> date | None:
    """The opening day in [start, end] nearest to `preferred` (earlier day on a tie)."""
    span = (end - start).days
    for offset in range(span + 1):
        for candidate in (preferred - timedelta(days=offset), preferred + timedelta(days=offset)):
            if start <= candidate <= end and candidate.weekday() in weekdays:
                return candidate
    return None


def slots_for_branch(branch: BranchSlotInfo, starts_on: date, ends_on: date, visits: int, salt: str = "") -> list[Slot]:
    """`visits` windows spread evenly over the period, each inside local opening hours on an opening day."""
    days = (ends_on - starts_on).days + 1
    zone = ZoneInfo(branch.timezone)
    open_minutes = branch.opens.hour * 60 + branch.opens.minute
    close_minutes = branch.closes.hour * 60 + branch.closes.minute
    window_minutes = min(int(WINDOW.total_seconds() // 60), max(close_minutes - open_minutes, 0))
    if window_minutes <= 0:
        raise PlanningError(f"branch {branch.id} has no opening hours")
    # Start times on the hour or half hour so that windows differ from visit to visit.
    starts = list(range(open_minutes, close_minutes - window_minutes + 1, 30)) or [open_minutes]
    slots: list[Slot] = []
    for n in range(visits):
        seg_start = starts_on + timedelta(days=days * n // visits)
        seg_end = starts_on + timedelta(days=max(days * (n + 1) // visits - 1, days * n // visits))
        middle = seg_start + (seg_end - seg_start) / 2
        day = _opening_day(seg_start, seg_end, branch.weekdays, middle) or _opening_day(
            starts_on, ends_on, branch.weekdays, middle
        )
        if day is None:
            raise PlanningError(f"branch {branch.id} is not open on any day of the period")
        minute = starts[_stable(salt, branch.id, str(n)) % len(starts)]
        local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)
        start_utc = local.astimezone(UTC)
        slots.append(Slot(branch.id, branch.region_id, n, start_utc, start_utc + timedelta(minutes=window_minutes)))
    return slots


def choose_assignee(slot: Slot, people: Sequence[Person], rotation: Rotation, *, covert: bool) -> str:
    """The least-loaded eligible person (ties broken by id); raises PlanningError when nobody is eligible."""
    eligible = [p for p in people if p.home_branch_id != slot.branch_id]
    previous = rotation.last_visitor.get(slot.branch_id)
    fresh = [p for p in eligible if p.id != previous]
    if covert:
        eligible = fresh  # a shopper seen last time would be recognised
    elif fresh:
        eligible = fresh  # inspectors: rotate when possible, repeat only if nobody else is left
    if not eligible:
        kind = "mystery shopper" if covert else "inspector"
        raise PlanningError(f"no eligible {kind} for branch {slot.branch_id}")
    chosen = min(eligible, key=lambda p: (rotation.load.get(p.id, 0), p.id))
    rotation.load[chosen.id] = rotation.load.get(chosen.id, 0) + 1
    rotation.last_visitor[slot.branch_id] = chosen.id
    return chosen.id


def plan_visits(
    branches: Sequence[BranchSlotInfo],
    people: Sequence[Person],
    *,
    starts_on: date,
    ends_on: date,
    visits_per_branch: int,
    covert: bool,
    rotation: Rotation | None = None,
    salt: str = "",
) -> list[Visit]:
    """Every visit of a program with its assignee, in chronological order."""
    rotation = rotation or Rotation()
    slots = [
        slot
        for branch in sorted(branches, key=lambda b: b.id)
        for slot in slots_for_branch(branch, starts_on, ends_on, visits_per_branch, salt)
    ]
    slots.sort(key=lambda s: (s.window_start, s.branch_id, s.visit_no))
    return [Visit(slot, choose_assignee(slot, people, rotation, covert=covert)) for slot in slots]


def branch_slot_info(doc: Mapping[str, object]) -> BranchSlotInfo:
    """A branch document's opening hours as the planner needs them."""
    hours = doc.get("opening_hours") or {}
    assert isinstance(hours, dict)
    return BranchSlotInfo(
        id=str(doc["_id"]),
        region_id=str(doc["region_id"]),
        timezone=str(doc.get("timezone") or "UTC"),
        opens=parse_hhmm(str(hours.get("open", "09:00"))),
        closes=parse_hhmm(str(hours.get("close", "17:00"))),
        weekdays=tuple(int(d) for d in hours.get("weekdays", [0, 1, 2, 3, 4])),
    )
