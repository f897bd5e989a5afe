"""Rules for changing a branch: moving its open work to a new time zone at the same local time. I/O-free."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def same_local_time(moment: datetime, old_timezone: str, new_timezone: str) -> datetime:
    """The instant showing the same wall-clock time in `new_timezone` as `moment` showed in `old_timezone`:
    a deadline of 18:00 in the branch stays 18:00 in the branch when its time zone is corrected."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    wall = aware.astimezone(ZoneInfo(old_timezone)).replace(tzinfo=None)
    return wall.replace(tzinfo=ZoneInfo(new_timezone)).astimezone(UTC)
