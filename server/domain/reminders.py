"""When to remind about a rectification, whom, and how to keep reminders out of the night (no I/O).

A schedule is a list of steps counted from the deadline: by default 48 h before, 24 h before, at the
deadline, then one step per day overdue. Step k has a nominal time; its delivery time is the nominal
time moved out of the quiet hours of the branch's time zone (a step at 02:00 waits until 08:00).
After downtime every step that fell due collapses into one reminder: the latest one due.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from server.domain.deadlines import local_to_utc

# Who hears about a reminder at each escalation level, cumulatively.
LEVEL_ROLES: tuple[tuple[str, ...], ...] = (
    ("branch_head",),
    ("branch_head", "regional_manager"),
    ("branch_head", "regional_manager", "compliance"),
)
MAX_CATCH_UP_STEPS = 100_000  # a guard against a malformed policy, far beyond any real downtime


@dataclass(frozen=True)
class ReminderPolicy:
    """The configurable schedule, escalation thresholds and quiet hours."""

    before: tuple[timedelta, ...] = (timedelta(hours=48), timedelta(hours=24))
    overdue_every: timedelta = timedelta(days=1)
    regional_after: timedelta = timedelta(days=1)
    compliance_after: timedelta = timedelta(days=3)
    quiet_start: time = time(20, 0)
    quiet_end: time = time(8, 0)
    digest_at: time = time(8, 30)
    due_soon: timedelta = timedelta(hours=48)
    _sorted_before: tuple[timedelta, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.overdue_every <= timedelta(0):
            raise ValueError("overdue_every must be positive")
        object.__setattr__(self, "_sorted_before", tuple(sorted(self.before, reverse=True)))

    @classmethod
    def from_text(
        cls,
        *,
        before_hours: str = "48,24",
        overdue_every_hours: float = 24,
        regional_after_hours: float = 24,
        compliance_after_hours: float = 72,
        quiet_hours: str = "20:00-08:00",
        digest_at: str = "08:30",
    ) -> ReminderPolicy:
        """Build from configuration strings such as before_hours='48,24' and quiet_hours='20:00-08:00'."""
        before = tuple(timedelta(hours=float(h)) for h in before_hours.split(",") if h.strip())
        start, _, end = quiet_hours.partition("-")
        return cls(
            before=before,
            overdue_every=timedelta(hours=overdue_every_hours),
            regional_after=timedelta(hours=regional_after_hours),
            compliance_after=timedelta(hours=compliance_after_hours),
            quiet_start=time.fromisoformat(start.strip()),
            quiet_end=time.fromisoformat(end.strip()),
            digest_at=time.fromisoformat(digest_at),
        )

    @property
    def steps_before_due(self) -> int:
        return len(self._sorted_before)

    def nominal_time(self, due_at: datetime, step: int) -> datetime:
        """Step k's time before quiet hours: the `before` offsets, then the deadline, then daily overdue."""
        before = self._sorted_before
        if step < len(before):
            return due_at - before[step]
        return due_at + (step - len(before)) * self.overdue_every

    def in_quiet_hours(self, local: time) -> bool:
        start, end = self.quiet_start, self.quiet_end
        if start == end:
            return False
        if start > end:  # the window wraps midnight, as 20:00-08:00 does
            return local >= start or local < end
        return start <= local < end

    def deliverable_at(self, moment: datetime, timezone: str) -> datetime:
        """`moment`, or the end of the quiet hours it falls in (local wall time, DST-aware)."""
        tz = ZoneInfo(timezone)
        local = moment.astimezone(tz)
        if not self.in_quiet_hours(local.time().replace(tzinfo=None)):
            return moment
        day = local.date()
        if self.quiet_start > self.quiet_end and local.time() >= self.quiet_start:
            day += timedelta(days=1)
        return max(moment, local_to_utc(day, self.quiet_end, tz))

    def delivery_time(self, due_at: datetime, step: int, timezone: str) -> datetime:
        return self.deliverable_at(self.nominal_time(due_at, step), timezone)

    def escalation_level(self, due_at: datetime, step: int) -> int:
        """0 branch head; 1 + regional manager a day overdue; 2 + compliance three days overdue."""
        overdue_by = self.nominal_time(due_at, step) - due_at
        if overdue_by >= self.compliance_after:
            return 2
        if overdue_by >= self.regional_after:
            return 1
        return 0

    def first_step(self, due_at: datetime, now: datetime, timezone: str) -> int:
        """The first step still ahead of `now` (steps already past when scheduling are skipped)."""
        step = 0
        while self.delivery_time(due_at, step, timezone) <= now and step < MAX_CATCH_UP_STEPS:
            step += 1
        return step

    def plan(self, due_at: datetime, step: int, now: datetime, timezone: str) -> ReminderPlan | None:
        """The single reminder to send at `now` for an item whose next step is `step`, or None if
        nothing is due. Steps that fell due during downtime collapse into the latest one."""
        if self.delivery_time(due_at, step, timezone) > now:
            return None
        latest = step
        while latest < MAX_CATCH_UP_STEPS and self.delivery_time(due_at, latest + 1, timezone) <= now:
            latest += 1
        return ReminderPlan(
            step=latest,
            skipped=latest - step,
            level=self.escalation_level(due_at, latest),
            overdue=self.nominal_time(due_at, latest) >= due_at,
            next_step=latest + 1,
            next_at=self.delivery_time(due_at, latest + 1, timezone),
        )

    def digest_date(self, now: datetime, timezone: str) -> date | None:
        """The local date whose digest is due at `now`: after the digest time and before quiet hours."""
        local = now.astimezone(ZoneInfo(timezone))
        wall = local.time().replace(tzinfo=None)
        if wall < self.digest_at or self.in_quiet_hours(wall):
            return None
        return local.date()


@dataclass(frozen=True)
class ReminderPlan:
    """What the sweep sends now and where the schedule continues."""

    step: int
    skipped: int
    level: int
    overdue: bool
    next_step: int
    next_at: datetime


def roles_for_level(level: int) -> tuple[str, ...]:
    return LEVEL_ROLES[max(0, min(level, len(LEVEL_ROLES) - 1))]


def step_kind(policy: ReminderPolicy, step: int) -> str:
    """'before' (due soon), 'due' (the deadline) or 'overdue', for choosing the message."""
    if step < policy.steps_before_due:
        return "before"
    return "due" if step == policy.steps_before_due else "overdue"
