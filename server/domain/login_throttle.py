"""Login throttling: protect each account against guessing without handing anyone a lockout button.

- Per account, whatever address the attempts come from: a few mistakes are free; then each further
  attempt must wait twice as long as the one before; then the account is locked for a while. Only the
  account's own failures count, so no one's mistakes refuse another account's login.
- Per address: locked only after failures on many different usernames, which is password spraying;
  a branch office behind one NAT address, mistyping, never gets there."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

Refusal = Literal["account_delay", "account_locked", "address_locked"]


@dataclass(frozen=True)
class ThrottlePolicy:
    free_failures: int = 3
    lock_after: int = 10
    # Failures are forgotten this long after the last one; a lock lasts this long.
    window: timedelta = timedelta(minutes=15)
    max_delay: timedelta = timedelta(minutes=5)
    address_max_usernames: int = 30


@dataclass(frozen=True)
class AccountFailures:
    """What is remembered about an account's recent failed logins."""

    count: int = 0
    last_at: datetime | None = None
    locked_until: datetime | None = None

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> AccountFailures:
        if not doc:
            return cls()
        return cls(count=int(doc.get("count", 0)), last_at=doc.get("last_at"), locked_until=doc.get("locked_until"))

    def as_doc(self) -> dict[str, Any]:
        return {"count": self.count, "last_at": self.last_at, "locked_until": self.locked_until}


@dataclass(frozen=True)
class Wait:
    reason: Refusal
    seconds: int


def delay_after(policy: ThrottlePolicy, failures: int) -> timedelta:
    """How long the next attempt must wait after `failures` recent failures: 0, then 1 s, 2 s, 4 s, ..."""
    if failures < policy.free_failures:
        return timedelta(0)
    seconds = 2 ** min(failures - policy.free_failures, 30)
    return min(timedelta(seconds=seconds), policy.max_delay)


def _current(policy: ThrottlePolicy, failures: AccountFailures, now: datetime) -> AccountFailures:
    """Failures older than the window no longer count."""
    if failures.last_at is None or now - failures.last_at >= policy.window:
        if failures.locked_until is not None and now < failures.locked_until:
            return failures
        return AccountFailures()
    return failures


def account_wait(policy: ThrottlePolicy, failures: AccountFailures, now: datetime) -> Wait | None:
    """Whether a login attempt on this account must wait, and how long."""
    failures = _current(policy, failures, now)
    if failures.locked_until is not None and now < failures.locked_until:
        return Wait("account_locked", _whole_seconds(failures.locked_until - now))
    if failures.last_at is None:
        return None
    ready = failures.last_at + delay_after(policy, failures.count)
    if now < ready:
        return Wait("account_delay", _whole_seconds(ready - now))
    return None


def after_failure(policy: ThrottlePolicy, failures: AccountFailures, now: datetime) -> AccountFailures:
    """The account's state after one more failed attempt."""
    failures = _current(policy, failures, now)
    count = failures.count + 1
    locked_until = now + policy.window if count >= policy.lock_after else None
    return AccountFailures(count=count, last_at=now, locked_until=locked_until)


def address_wait(locked_until: datetime | None, now: datetime) -> Wait | None:
    if locked_until is not None and now < locked_until:
        return Wait("address_locked", _whole_seconds(locked_until - now))
    return None


def address_locks(policy: ThrottlePolicy, usernames_failed: int) -> bool:
    """Whether failures on this many different usernames from one address are spraying."""
    return usernames_failed >= policy.address_max_usernames


def _whole_seconds(span: timedelta) -> int:
    return max(1, int(-(-span.total_seconds() // 1)))
