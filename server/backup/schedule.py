"""When the scheduled job takes a backup, what it names it, and which old ones it removes. No I/O."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

PREFIX = "branch-audit-"
STAMP = "%Y%m%dT%H%M%SZ"
PARTIAL = ".partial"
_NAME = re.compile(r"^branch-audit-\d{8}T\d{6}Z$")
# After a failure the job tries again sooner than the period, but not so often that admins are flooded.
RETRY_AFTER = timedelta(hours=1)


def backup_name(at: datetime) -> str:
    """Names sort in time order: the newest backup is the last name."""
    return PREFIX + at.astimezone(UTC).strftime(STAMP)


def is_backup_name(name: str) -> bool:
    return bool(_NAME.match(name))


def is_due(now: datetime, last_started: datetime | None, last_succeeded: bool, every: timedelta) -> bool:
    """Due when none was ever tried, a period after the last success, or an hour after a failure."""
    if last_started is None:
        return True
    wait = every if last_succeeded else min(every, RETRY_AFTER)
    return now >= last_started + wait


def to_prune(names: list[str], keep: int, in_progress: str | None = None) -> list[str]:
    """The backups beyond the newest `keep`, and partial directories left by backups that were cut short
    (never the one being written now). Other names in the directory are not ours and are left alone."""
    finished = sorted((n for n in names if is_backup_name(n)), reverse=True)
    stale = sorted(n for n in names if n.endswith(PARTIAL) and is_backup_name(n[: -len(PARTIAL)])
                   and n != f"{in_progress}{PARTIAL}")
    return finished[max(keep, 1):] + stale
