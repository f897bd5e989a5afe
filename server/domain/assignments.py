"""Planning a program's visits: when (spread over the period and the branch's opening hours, in its own
time zone) and who (rotation: never one's own home branch, never the same shopper twice in a row at a
branch, never two visits at once, least-loaded first with a deterministic tie-break)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WINDOW = timedelta(hours=2)
# Between two visits of one person: getting from one branch to the next.
TRAVEL = timedelta(minutes=30)


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
    # Other windows in the visit's part of the period, in order of preference, for when nobody is free.
    alternatives: tuple[datetime, ...] = field(default=(), compare=False, repr=False)

    def options(self) -> list[Slot]:
        length = self.window_end - self.window_start
        return [self] + [
            Slot(self.branch_id, self.region_id, self.visit_no, start, start + length)
            for start in self.alternatives
        ]


@dataclass(frozen=True)
class Visit:
    slot: Slot
    assignee_id: str


@dataclass
class Rotation:
    """Who visited each branch last, how much open work everybody has and when they are already booked,
    updated as visits are planned."""

    last_visitor: dict[str, str] = field(default_factory=dict)
    load: dict[str, int] = field(default_factory=dict)
    booked: dict[str, list[tuple[datetime, datetime]]] = field(default_factory=dict)

    def is_free(self, person_id: str, start: datetime, end: datetime) -> bool:
        """No booked window of theirs comes within TRAVEL of [start, end)."""
        return all(end + TRAVEL <= s or e + TRAVEL <= start for s, e in self.booked.get(person_id, []))

    def book(self, person_id: str, slot: Slot) -> None:
        self.load[person_id] = self.load.get(person_id, 0) + 1
        self.last_visitor[slot.branch_id] = person_id
        self.booked.setdefault(person_id, []).append((slot.window_start, slot.window_end))


def _stable(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:4], "big")


def parse_hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _opening_days(start: date, end: date, weekdays: Sequence[int], preferred: date) -> list[date]:
    """The opening days in [start, end], nearest to `preferred` first (the earlier day on a tie)."""
    days = [start + timedelta(days=k) for k in range((end - start).days + 1)]
    return sorted((d for d in days if d.weekday() in weekdays), key=lambda d: (abs((d - preferred).days), d))


def slots_for_branch(branch: BranchSlotInfo, starts_on: date, ends_on: date, visits: int, salt: str = "") -> list[Slot]:
    """`visits` windows spread evenly over the period, each inside local opening hours on an opening day.

    Visit n falls in the n-th equal part of the period, on a day and at a time picked by a stable hash, so
    that branches do not all get the same day; the other days and times of that part are its
    alternatives, nearest first, for when nobody is free."""
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
        pick = _stable(salt, branch.id, str(n))
        preferred = seg_start + timedelta(days=pick % ((seg_end - seg_start).days + 1))
        options = _opening_days(seg_start, seg_end, branch.weekdays, preferred) or _opening_days(
            starts_on, ends_on, branch.weekdays, preferred
        )
        if not options:
            raise PlanningError(f"branch {branch.id} is not open on any day of the period")
        first = (pick // 7) % len(starts)
        minutes = starts[first:] + starts[:first]  # the preferred start, then the rest of the day in turn
        utc = [
            datetime.combine(day, time(m // 60, m % 60), tzinfo=zone).astimezone(UTC)
            for day in options
            for m in minutes
        ]
        end = timedelta(minutes=window_minutes)
        slots.append(Slot(branch.id, branch.region_id, n, utc[0], utc[0] + end, tuple(utc[1:])))
    return slots


def choose_assignee(slot: Slot, people: Sequence[Person], rotation: Rotation, *, covert: bool) -> str | None:
    """The least-loaded eligible person free at the slot (ties broken by id), booked for it; None when every
    eligible person is busy then. Raises PlanningError when nobody is eligible at all."""
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
    free = [p for p in eligible if rotation.is_free(p.id, slot.window_start, slot.window_end)]
    if not free:
        return None
    chosen = min(free, key=lambda p: (rotation.load.get(p.id, 0), p.id))
    rotation.book(chosen.id, slot)
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
    """Every visit of a program with its assignee, in chronological order. A visit whose window finds
    every eligible person busy moves to another window in its part of the period."""
    rotation = rotation or Rotation()
    slots = [
        slot
        for branch in sorted(branches, key=lambda b: b.id)
        for slot in slots_for_branch(branch, starts_on, ends_on, visits_per_branch, salt)
    ]
    slots.sort(key=lambda s: (s.window_start, s.branch_id, s.visit_no))
    visits: list[Visit] = []
    for slot in slots:
        for option in slot.options():
            assignee = choose_assignee(option, people, rotation, covert=covert)
            if assignee is not None:
                visits.append(Visit(option, assignee))
                break
        else:
            kind = "mystery shopper" if covert else "inspector"
            raise PlanningError(
                f"every eligible {kind} is already booked whenever branch {slot.branch_id} could have "
                f"visit {slot.visit_no + 1} (around {slot.window_start.date().isoformat()}); "
                "widen the period or add people"
            )
    visits.sort(key=lambda v: (v.slot.window_start, v.slot.branch_id, v.slot.visit_no))
    return visits


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


# --- changing one planned visit ---------------------------------------------------------------------


@dataclass(frozen=True)
class VisitProblem:
    field: str
    message: str


def window_problems(branch: BranchSlotInfo, start: datetime, end: datetime, starts_on: date,
                    ends_on: date) -> list[VisitProblem]:
    """A moved visit's window: after its start, within one opening day of the branch, in local opening hours,
    and within the program's period (the branch's local dates)."""
    if end <= start:
        return [VisitProblem("window_end", "the window ends before it starts")]
    zone = ZoneInfo(branch.timezone)
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    problems: list[VisitProblem] = []
    if not starts_on <= local_start.date() <= ends_on:
        problems.append(VisitProblem("window_start", f"outside the program's period {starts_on} to {ends_on}"))
    if local_start.weekday() not in branch.weekdays:
        problems.append(VisitProblem("window_start", "the branch is closed that day"))
    if (local_start.date() != local_end.date() or local_start.time() < branch.opens
            or local_end.time() > branch.closes):
        problems.append(VisitProblem(
            "window_start" if not branch.opens <= local_start.time() < branch.closes else "window_end",
            f"outside the branch's opening hours {branch.opens:%H:%M}-{branch.closes:%H:%M} local time"))
    return problems


def assignee_problems(person: Person, *, branch_id: str, covert: bool, previous_visitor: str | None,
                      booked: Sequence[tuple[datetime, datetime]], start: datetime,
                      end: datetime) -> list[VisitProblem]:
    """The planning rules for one person on one visit: never their own home branch, a shopper never twice in
    a row at a branch (they would be recognised), and no other visit of theirs within TRAVEL."""
    problems: list[VisitProblem] = []
    if person.home_branch_id == branch_id:
        problems.append(VisitProblem("assignee_id", "nobody visits their own home branch (conflict of interest)"))
    if covert and previous_visitor == person.id:
        problems.append(VisitProblem("assignee_id", "this shopper made the branch's previous visit"))
    if not Rotation(booked={person.id: list(booked)}).is_free(person.id, start, end):
        problems.append(VisitProblem(
            "assignee_id", f"already booked within {int(TRAVEL.total_seconds() // 60)} minutes of this window"))
    return problems
