"""Login throttling decisions and the client address behind proxies (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.domain.login_throttle import (
    AccountFailures,
    ThrottlePolicy,
    account_wait,
    address_locks,
    address_wait,
    after_failure,
    delay_after,
)
from server.http.request_meta import client_from_forwarded, trusted_networks

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
POLICY = ThrottlePolicy()


def _fail(times: int, *, every: timedelta = timedelta(0)) -> tuple[AccountFailures, datetime]:
    state, now = AccountFailures(), T0
    for _ in range(times):
        state = after_failure(POLICY, state, now)
        now += every
    return state, now - every


def test_delays_double_after_the_free_failures_and_are_capped() -> None:
    assert [delay_after(POLICY, n).total_seconds() for n in range(0, 11)] == [0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128]
    assert delay_after(POLICY, 40) == POLICY.max_delay


def test_no_wait_for_the_first_mistakes() -> None:
    state, now = _fail(2)
    assert account_wait(POLICY, state, now) is None


def test_a_wait_after_them_then_free_again_when_it_has_passed() -> None:
    state, now = _fail(4)
    wait = account_wait(POLICY, state, now)
    assert wait is not None and wait.reason == "account_delay" and wait.seconds == 2
    assert account_wait(POLICY, state, now + timedelta(seconds=2)) is None


def test_the_tenth_failure_locks_for_the_window() -> None:
    state, now = _fail(10, every=timedelta(minutes=1))
    assert state.locked_until == now + POLICY.window
    wait = account_wait(POLICY, state, now + timedelta(minutes=14))
    assert wait is not None and wait.reason == "account_locked" and wait.seconds == 60
    assert account_wait(POLICY, state, now + POLICY.window) is None
    # After the lock, the count starts again.
    assert after_failure(POLICY, state, now + POLICY.window).count == 1


def test_failures_are_forgotten_a_window_after_the_last() -> None:
    state, now = _fail(5)
    assert after_failure(POLICY, state, now + POLICY.window).count == 1
    assert after_failure(POLICY, state, now + POLICY.window - timedelta(seconds=1)).count == 6


def test_an_address_locks_only_for_many_usernames() -> None:
    assert not address_locks(POLICY, POLICY.address_max_usernames - 1)
    assert address_locks(POLICY, POLICY.address_max_usernames)
    wait = address_wait(T0 + timedelta(seconds=90), T0)
    assert wait is not None and wait.reason == "address_locked" and wait.seconds == 90
    assert address_wait(T0, T0) is None and address_wait(None, T0) is None


def test_the_client_is_the_rightmost_untrusted_forwarded_address() -> None:
    proxies = trusted_networks("10.0.0.0/8, 192.0.2.1")
    assert client_from_forwarded("10.0.0.5", ["203.0.113.9"], proxies) == "203.0.113.9"
    # A client that writes its own header gets its entry ignored: the proxy appended the real one.
    assert client_from_forwarded("10.0.0.5", ["1.1.1.1, 203.0.113.9"], proxies) == "203.0.113.9"
    # Two proxies in a row.
    assert client_from_forwarded("10.0.0.5", ["203.0.113.9, 192.0.2.1"], proxies) == "203.0.113.9"
    assert client_from_forwarded("10.0.0.5", ["203.0.113.9", "10.9.9.9"], proxies) == "203.0.113.9"
    # From an untrusted peer, or with nothing trusted, the header is not believed.
    assert client_from_forwarded("198.51.100.7", ["203.0.113.9"], proxies) == "198.51.100.7"
    assert client_from_forwarded("10.0.0.5", ["203.0.113.9"], ()) == "10.0.0.5"
    # Garbage where an address belongs: the last hop a trusted proxy vouched for.
    assert client_from_forwarded("10.0.0.5", ["not-an-ip, 10.1.1.1"], proxies) == "10.1.1.1"
    assert client_from_forwarded("10.0.0.5", [], proxies) == "10.0.0.5"
    # IPv6.
    assert client_from_forwarded("fd00::1", ["2001:db8::7"], trusted_networks("fd00::/8")) == "2001:db8::7"
