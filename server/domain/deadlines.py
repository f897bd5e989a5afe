"""When a finding must be fixed: days from the audit's release by severity, in the branch's time zone.

The rule, in the branch's local time:
1. take the local calendar date of the release;
2. add the policy's days for the severity (calendar days, or with `working_days` Monday-Friday only,
   so a Friday release with one working day is due on Monday);
3. the deadline is the end of the local business day of that date (18:00 by default, the usual
   closing of a branch's back office; configurable, e.g. 23:59:59).
If that moment is not after the release (0 days and released after closing), the next (working) day
counts instead, so a rectification is never born overdue.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from schemas.checklist import DuePolicy

DEFAULT_POLICY = DuePolicy()  # critical 1, major 3, minor 7 calendar days
DEFAULT_END_OF_DAY = time(18, 0)
SATURDAY = 5


def days_for(policy: DuePolicy, severity: str) -> int:
    """The policy's days for a severity (unknown severities get the minor allowance)."""
    return {"critical": policy.critical, "major": policy.major}.get(severity, policy.minor)


def is_working_day(day: date) -> bool:
    return day.weekday() < SATURDAY


def add_working_days(start: date, days: int) -> date:
    """The `days`-th Monday-Friday day after `start` (Friday + 1 and Saturday + 1 are both Monday)."""
    current = start
    for _ in range(days):
        current += timedelta(days=1)
        while not is_working_day(current):
            current += timedelta(days=1)
    return current


def local_to_utc(day: date, at: time, tz: ZoneInfo) -> datetime:
    """A local wall-clock moment as UTC. A time skipped by a DST jump means the same instant shifted
    forward (02:30 on a spring-forward night is 03:30); a repeated time means its first occurrence."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def parse_local_time(text: str) -> time:
    """'18:00' or '23:59:59' -> time."""
    return time.fromisoformat(text)


def due_at(
    released_at: datetime,
    severity: str,
    policy: DuePolicy | None,
    timezone: str,
    end_of_day: time = DEFAULT_END_OF_DAY,
) -> datetime:
    """The UTC deadline for a finding of `severity` released at `released_at` to a branch in `timezone`."""
    effective = policy or DEFAULT_POLICY
    tz = ZoneInfo(timezone)
    release_day = released_at.astimezone(tz).date()
    days = days_for(effective, severity)
    due_day = _advance(release_day, days, effective.working_days)
    deadline = local_to_utc(due_day, end_of_day, tz)
    if deadline <= released_at:
        deadline = local_to_utc(_advance(due_day, 1, effective.working_days), end_of_day, tz)
    return deadline


def _advance(day: date, days: int, working_days: bool) -> date:
    return add_working_days(day, days) if working_days else day + timedelta(days=days)


def restart_due_at(
    now: datetime,
    severity: str,
    policy: DuePolicy | None,
    timezone: str,
    end_of_day: time = DEFAULT_END_OF_DAY,
) -> datetime:
    """A fresh deadline counted from `now` (a rejected fix without an explicit new date)."""
    return due_at(now, severity, policy, timezone, end_of_day)


def local_iso(moment: datetime, timezone: str) -> str:
    """RFC 3339 with the branch's offset, for showing deadlines in local time."""
    return moment.astimezone(ZoneInfo(timezone)).isoformat()
