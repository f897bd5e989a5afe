"""What a delivery attempt's outcome means and when to try again (pure; the worker does the I/O)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

RETRY = "retry"
DELIVERED = "delivered"
FAILED = "failed"  # permanent: the receiver refused it


def classify(status_code: int | None) -> str:
    """No status (timeout, connection error), 5xx and 429 are worth retrying; 2xx is done; the rest
    (4xx, and 3xx because redirects are not followed) is a refusal that retrying will not change."""
    if status_code is None or status_code >= 500 or status_code == 429:
        return RETRY
    if 200 <= status_code < 300:
        return DELIVERED
    return FAILED


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A Retry-After header (seconds or an HTTP date) as a delay; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(timedelta(0), when - now)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: base * 2^(attempt-1), capped, scaled by a random factor in
    [1 - jitter, 1] so receivers coming back up are not hit by every delivery at once."""

    max_attempts: int = 10
    base_s: float = 10.0
    cap_s: float = 6 * 3600.0
    jitter: float = 0.25
    max_retry_after_s: float = 24 * 3600.0

    def delay(self, attempts: int, rng: random.Random, requested: timedelta | None = None) -> timedelta:
        exponential = min(self.cap_s, self.base_s * 2 ** max(0, attempts - 1))
        delay = timedelta(seconds=exponential * (1 - self.jitter * rng.random()))
        if requested is not None:
            # Honour the receiver's Retry-After, within reason, but never retry sooner than backoff says.
            delay = max(delay, min(requested, timedelta(seconds=self.max_retry_after_s)))
        return delay
