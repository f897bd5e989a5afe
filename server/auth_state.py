"""What an instance keeps to authenticate requests: its signing keys, and a short cache of the users behind
access tokens, so a request costs no database round trip.

A cache must never outlive a revocation (a logout, a deactivation, a password change). So:
- every revocation increments one revocation epoch in the same transaction;
- every instance watches that epoch (a change stream) and clears its cache on each change, then
  acknowledges the epoch it has seen;
- the request that revoked waits, before it answers, until every live instance has acknowledged
  (`revocations_reach_every_instance`): the caller's very next request, on any instance, is refused.
An instance whose change stream is down does not cache at all; one that does not acknowledge within
ACK_TIMEOUT_S (stalled) keeps its entries at most `AUTH_CACHE_S`: that is the worst case."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import PyMongoError

from server.context import Services
from server.db import Doc
from server.security import SigningKey, SigningKeys
from server.settings import Settings
from server.storage import auth as auth_store

log = logging.getLogger("branch_audit.auth")

ACK_TIMEOUT_S = 2.0
ACK_POLL_S = 0.01
# A live instance renews its registration this often; a crashed one stops counting after LISTENER_TTL.
LISTENER_RENEW_S = 30.0
LISTENER_TTL = timedelta(seconds=90)
RETRY_AFTER_FAILURE_S = 5.0
STOP_WAIT_S = 2.0
# How long the database holds the revocation stream's idle getMore before answering it empty. The Rust
# embedded server waits for a read in flight before it can stop while an API still runs (a supervisor's
# restart, a test's): at 10 s a stop waited up to 10 s. At rest this costs one idle getMore a second.
IDLE_READ_MS = 1_000
MAX_CACHED_USERS = 10_000


class AuthCache:
    """Users behind recent access tokens, for at most `ttl_s`; off while revocations cannot be followed."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self.enabled = False
        # Bumped on every clear: a read that started before a clear must not store what it read.
        self.generation = 0
        self.hits = 0
        self._entries: dict[str, tuple[float, Doc]] = {}

    def get(self, user_id: str) -> Doc | None:
        if not self.enabled:
            return None
        entry = self._entries.get(user_id)
        if entry is None or entry[0] < time.monotonic():
            return None
        self.hits += 1
        return dict(entry[1])  # a copy: a handler changing the request's user must not change the cache

    def put(self, user_id: str, user: Doc, generation: int) -> None:
        if not self.enabled or generation != self.generation or self.ttl_s <= 0:
            return
        if len(self._entries) >= MAX_CACHED_USERS:
            self._entries.pop(next(iter(self._entries)))
        self._entries[user_id] = (time.monotonic() + self.ttl_s, user)

    def clear(self) -> None:
        self._entries.clear()
        self.generation += 1


@dataclass
class AuthState:
    keys: SigningKeys
    cache: AuthCache
    listener_task: asyncio.Task[None] | None = None
    seen_epoch: int = 0
    extras: dict[str, Any] = field(default_factory=dict)


def build_auth_state(settings: Settings) -> AuthState:
    """Signing keys from the settings (refusing weak ones) and an empty cache."""
    from server.http.request_meta import trusted_networks

    try:
        trusted_networks(settings.trusted_proxies)  # a typo must stop start-up, not trust nobody silently
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    current = SigningKey.of(settings.jwt_secret_or_generated())
    previous = SigningKey.of(settings.jwt_previous_secret) if settings.jwt_previous_secret else None
    return AuthState(keys=SigningKeys(current, previous), cache=AuthCache(settings.auth_cache_s))


def auth_state(services: Services) -> AuthState:
    if services.shared.auth is None:
        services.shared.auth = build_auth_state(services.settings)
    return services.shared.auth


def _wall_now() -> datetime:
    # Instance liveness is about real time, not the injectable clock of the domain.
    return datetime.now(UTC)


# --- start and stop (the app's cleanup context) ---------------------------------------------------


async def start_auth(services: Services) -> None:
    """Learn since when the current key signs (the previous one is honoured one access-token lifetime
    longer), and start following revocations."""
    state = auth_state(services)
    if state.keys.previous is not None:
        first_use = await auth_store.first_use_of_key(services.db, state.keys.current.kid, services.clock.now())
        state.keys.previous_until = first_use + timedelta(seconds=services.settings.access_token_ttl_s)
    else:
        await auth_store.first_use_of_key(services.db, state.keys.current.kid, services.clock.now())
    if services.settings.auth_cache_s > 0:
        loop = asyncio.get_running_loop()
        state.listener_task = loop.create_task(_follow_revocations(services, state),
                                               context=contextvars.Context())


async def cancel_listener(task: asyncio.Task[None], within_s: float = STOP_WAIT_S) -> bool:
    """Cancel the revocation listener and wait for it, at most `within_s`; whether it ended.

    Not an unbounded wait: a change-stream read in flight may end only when the client closes its
    connection, which happens after this (seen on the Python embedded server under load). The cancel is
    repeated: one that arrives while the listener is opening its stream can be swallowed inside the
    driver, and the listener would then go on (reading, or retrying a database that is gone) for ever."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not task.done() and asyncio.get_running_loop().time() < deadline:
        task.cancel()
        await asyncio.wait({task}, timeout=0.05)
    return task.done()


async def stop_auth(services: Services) -> None:
    state = auth_state(services)
    state.cache.enabled = False
    task, state.listener_task = state.listener_task, None
    if task is not None:
        await cancel_listener(task)
        with contextlib.suppress(PyMongoError):
            await auth_store.unregister_listener(services.db, services.instance_id)


async def _follow_revocations(services: Services, state: AuthState) -> None:
    db = services.db
    pipeline = [{"$match": {"ns.coll": {"$in": ["users", "auth_epoch"]}}}]
    while True:
        renewer: asyncio.Task[None] | None = None
        try:
            async with await db.watch(pipeline, max_await_time_ms=IDLE_READ_MS) as stream:
                # Anything revoked before the stream opened is forgotten now; anything after arrives on it.
                state.cache.clear()
                state.seen_epoch = await auth_store.revocation_epoch(db)
                await auth_store.register_listener(db, services.instance_id, state.seen_epoch,
                                                   _wall_now() + LISTENER_TTL)
                renewer = asyncio.get_running_loop().create_task(_renew(services, state))
                state.cache.enabled = True
                async for change in stream:
                    # Any change to a user (role, scope, deactivation) or a revocation: forget everything;
                    # the next request of each user reads them afresh.
                    state.cache.clear()
                    if change["ns"]["coll"] == "auth_epoch":
                        epoch = (change.get("updateDescription") or {}).get("updatedFields", {}).get("epoch")
                        if epoch is None:
                            epoch = (change.get("fullDocument") or {}).get("epoch", 0)
                        state.seen_epoch = max(state.seen_epoch, int(epoch))
                        await auth_store.acknowledge(db, services.instance_id, state.seen_epoch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the cache stays off until the stream is back; requests read the database
            log.warning("authentication cache off: cannot follow revocations (%s)", type(exc).__name__)
        finally:
            state.cache.enabled = False
            state.cache.clear()
            if renewer is not None:
                renewer.cancel()
        await asyncio.sleep(RETRY_AFTER_FAILURE_S)


async def _renew(services: Services, state: AuthState) -> None:
    while True:
        await asyncio.sleep(LISTENER_RENEW_S)
        with contextlib.suppress(PyMongoError):
            await auth_store.register_listener(services.db, services.instance_id, state.seen_epoch,
                                               _wall_now() + LISTENER_TTL)


# --- revoking --------------------------------------------------------------------------------------


@dataclass(slots=True)
class PendingRevocation:
    epoch: int | None = None


_pending: contextvars.ContextVar[PendingRevocation | None] = contextvars.ContextVar("pending_revocation",
                                                                                   default=None)


def note_revocation(epoch: int) -> None:
    """Called inside the revoking transaction: the enclosing `revocations_reach_every_instance` waits for it."""
    pending = _pending.get()
    if pending is not None:
        pending.epoch = max(pending.epoch or 0, epoch)


class revocations_reach_every_instance:  # lower case: read as a verb at `async with`, as before
    """Around a request or a command: after it, no instance still trusts what it revoked. A plain class,
    not a generator context manager: it wraps every request, and this costs a quarter of the time."""

    __slots__ = ("_pending", "_services", "_token")

    def __init__(self, services: Services) -> None:
        self._services = services
        self._pending = PendingRevocation()

    async def __aenter__(self) -> None:
        self._token = _pending.set(self._pending)

    async def __aexit__(self, *exc_info: object) -> None:
        _pending.reset(self._token)
        if self._pending.epoch is not None:
            await _wait_until_forgotten(self._services, self._pending.epoch)


async def _wait_until_forgotten(services: Services, epoch: int) -> None:
    state = auth_state(services)
    # This instance forgets at once; the others acknowledge through the database.
    state.cache.clear()
    try:
        if await auth_store.revocation_epoch(services.db) < epoch:
            return  # the revoking transaction did not commit
        deadline = time.monotonic() + ACK_TIMEOUT_S
        while True:
            behind = await auth_store.listeners_behind(services.db, epoch, _wall_now(), services.instance_id)
            if not behind:
                return
            if time.monotonic() >= deadline:
                services.metrics.counters["auth_revocation_ack_timeouts_total"] += 1
                log.warning("instances %s did not confirm a revocation within %.1f s; they forget it within "
                            "AUTH_CACHE_S", ", ".join(behind), ACK_TIMEOUT_S)
                return
            await asyncio.sleep(ACK_POLL_S)
    except PyMongoError as exc:
        log.warning("could not confirm a revocation reached every instance: %s", type(exc).__name__)
