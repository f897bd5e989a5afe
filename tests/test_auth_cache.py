"""Authentication without a database read per request, and revocations that reach every instance before
the revoking request is answered: the very next request, on any instance, is refused."""

from __future__ import annotations

import asyncio
import gc
import json
import time
import warnings
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from aiohttp import ClientSession
from pymongo.errors import OperationFailure

from server.app import bootstrap
from server.auth_state import auth_state, cancel_listener, revocations_reach_every_instance, start_auth
from server.clock import FakeClock
from server.context import ActorInfo, Services, UnitOfWork
from server.embedded import EmbeddedMongo
from server.security import SigningKey, SigningKeys, VerifiedTokens, decode_access_token, issue_access_token
from server.sessions import end_sessions_of_user
from server.settings import Settings
from server.storage import auth as auth_store
from tests.conftest import Api
from tests.instances import another_instance, serving


async def _cache_on(*instances: Services) -> None:
    deadline = time.monotonic() + 10
    while not all(auth_state(s).cache.enabled for s in instances):
        assert time.monotonic() < deadline, "the revocation listener did not start"
        await asyncio.sleep(0.02)


async def _me(http: ClientSession, base: str, token: str) -> int:
    async with http.get(base + "/api/v1/me", headers={"Authorization": f"Bearer {token}"}) as resp:
        await resp.read()
        return resp.status


async def test_repeated_requests_are_authenticated_from_the_cache(api: Api, services: Services) -> None:
    await _cache_on(services)
    token = (await api.login("inspector"))["access_token"]
    hits = auth_state(services).cache.hits
    for _ in range(5):
        assert await _me(api.session, api.base, token) == 200
    assert auth_state(services).cache.hits >= hits + 4


async def test_a_logout_on_one_instance_refuses_the_token_on_another_at_once(
        api: Api, services: Services, settings: Settings, mongo_uri: str, clock: FakeClock) -> None:
    async with another_instance(settings, mongo_uri, clock) as (other, other_base):
        await _cache_on(services, other)
        tokens = await api.login("branch_head")
        token = tokens["access_token"]
        assert await _me(api.session, other_base, token) == 200
        assert await _me(api.session, other_base, token) == 200  # now cached there
        assert (await api.call("POST", "/api/v1/auth/logout",
                               headers={"Authorization": f"Bearer {token}"})).status == 200
        assert await _me(api.session, other_base, token) == 401


async def test_a_deactivated_user_is_refused_on_every_instance_at_the_next_request(
        api: Api, services: Services, settings: Settings, mongo_uri: str, clock: FakeClock) -> None:
    async with another_instance(settings, mongo_uri, clock) as (other, other_base):
        await _cache_on(services, other)
        tokens = await api.login("inspector")
        token, user_id = tokens["access_token"], tokens["user"]["id"]
        for base in (api.base, other_base):
            assert await _me(api.session, base, token) == 200
            assert await _me(api.session, base, token) == 200

        async def deactivate(uow: UnitOfWork) -> None:
            await uow.db.users.update_one({"_id": user_id}, {"$set": {"active": False}}, session=uow.session)
            await end_sessions_of_user(uow, user_id, "deactivated")

        # As the admin's deactivation command does, on this instance.
        async with revocations_reach_every_instance(services):
            await services.transact(ActorInfo.system("test"), deactivate)
        assert await _me(api.session, other_base, token) == 401
        assert await _me(api.session, api.base, token) == 401
        entry = await services.db.trail.find_one({"action": "session.end", "entity_id": user_id})
        assert entry is not None and entry["summary"] == {"reason": "deactivated", "sessions": 1}


async def test_a_password_change_ends_the_other_sessions_on_every_instance(
        api: Api, services: Services, settings: Settings, mongo_uri: str, clock: FakeClock) -> None:
    async with another_instance(settings, mongo_uri, clock) as (other, other_base):
        await _cache_on(services, other)
        phone = (await api.login("inspector"))["access_token"]
        desk = (await api.login("inspector"))["access_token"]
        assert await _me(api.session, other_base, phone) == 200
        resp = await api.call("POST", "/api/v1/me/password", headers={"Authorization": f"Bearer {desk}"},
                              json={"current_password": api.credentials["inspector"]["password"],
                                    "new_password": "a quiet harbour at dawn"})
        assert resp.status == 200
        assert await _me(api.session, other_base, phone) == 401
        assert await _me(api.session, other_base, desk) == 200


async def test_an_instance_that_never_confirms_delays_a_revocation_by_a_bounded_time(
        api: Api, services: Services) -> None:
    await _cache_on(services)
    # A registered instance that is stalled: it never acknowledges.
    await auth_store.register_listener(services.db, "stalled-instance", 0, datetime.now(UTC) + timedelta(minutes=1))
    token = (await api.login("inspector"))["access_token"]
    started = time.monotonic()
    assert (await api.call("POST", "/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})).status == 200
    assert 1.5 < time.monotonic() - started < 10  # ACK_TIMEOUT_S, with room for a loaded machine
    assert services.metrics.counters["auth_revocation_ack_timeouts_total"] == 1
    assert await _me(api.session, api.base, token) == 401


async def test_without_a_change_stream_an_instance_caches_nothing(
        api: Api, services: Services, settings: Settings, mongo_uri: str, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    other = bootstrap(settings.model_copy(), mongo_uri, clock=clock)

    def no_change_streams(*args: object, **kwargs: object) -> None:
        raise OperationFailure("The $changeStream stage is only supported on replica sets", code=40573)

    monkeypatch.setattr(other.db, "watch", no_change_streams)
    try:
        async with serving(other) as other_base:
            await _cache_on(services)
            tokens = await api.login("inspector")
            for _ in range(3):
                assert await _me(api.session, other_base, tokens["access_token"]) == 200
            state = auth_state(other)
            assert state.cache.enabled is False and state.cache.hits == 0
            # It never registered, so a revocation does not wait for it; it reads the database and refuses.
            assert (await api.call("POST", "/api/v1/auth/logout",
                                   headers={"Authorization": f"Bearer {tokens['access_token']}"})).status == 200
            assert services.metrics.counters["auth_revocation_ack_timeouts_total"] == 0
            assert await _me(api.session, other_base, tokens["access_token"]) == 401
    finally:
        await other.client.close()


# --- verified access tokens (no signature check per request) ---------------------------------------

def _ring(previous_until: datetime | None = None) -> tuple[SigningKeys, SigningKey]:
    old = SigningKey.of("previous-signing-secret-" + "p" * 32)
    keys = SigningKeys(SigningKey.of("current-signing-secret-" + "c" * 32), old)
    keys.previous_until = previous_until
    return keys, old


def test_a_token_is_verified_once_then_read_from_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    keys, _ = _ring()
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    token = issue_access_token(keys, user_id="u1", role="inspector", session_id="s1", now=now, ttl_s=900)
    first = decode_access_token(keys, token, now)
    assert first is not None and first["sub"] == "u1" and len(keys.verified) == 1

    def no_second_check(*args: object, **kwargs: object) -> None:
        raise AssertionError("the signature was checked again")

    monkeypatch.setattr(jwt, "decode", no_second_check)
    again = decode_access_token(keys, token, now + timedelta(seconds=60))
    assert again == first
    again["sub"] = "someone-else"  # the caller's copy; the next request reads the verified claims
    assert (decode_access_token(keys, token, now) or {}).get("sub") == "u1"


def test_a_forged_token_never_enters_and_is_refused_every_time() -> None:
    keys, _ = _ring()
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    token = issue_access_token(keys, user_id="u1", role="inspector", session_id="s1", now=now, ttl_s=900)
    assert decode_access_token(keys, token, now) is not None
    header, payload, signature = token.split(".")
    promoted = jwt.utils.base64url_encode(json.dumps(
        {**jwt.decode(token, options={"verify_signature": False}), "role": "admin"}).encode()).decode()
    for forged in (f"{header}.{promoted}.{signature}", f"{header}.{payload}.{signature[:-2]}AA"):
        assert decode_access_token(keys, forged, now) is None
        assert decode_access_token(keys, forged, now) is None
    assert len(keys.verified) == 1


def test_a_cached_token_still_expires_by_the_injected_clock() -> None:
    keys, _ = _ring()
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    token = issue_access_token(keys, user_id="u1", role="inspector", session_id="s1", now=now, ttl_s=900)
    assert decode_access_token(keys, token, now + timedelta(seconds=899)) is not None
    assert decode_access_token(keys, token, now + timedelta(seconds=900)) is None
    assert len(keys.verified) == 0
    assert decode_access_token(keys, token, now + timedelta(seconds=1)) is not None  # re-verified, still valid


def test_a_cached_token_of_the_previous_key_stops_working_when_the_key_retires() -> None:
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    keys, old = _ring(previous_until=now + timedelta(minutes=15))
    old_ring = SigningKeys(old)
    token = issue_access_token(old_ring, user_id="u1", role="inspector", session_id="s1", now=now, ttl_s=3600)
    assert decode_access_token(keys, token, now) is not None
    assert decode_access_token(keys, token, now + timedelta(minutes=14)) is not None
    assert decode_access_token(keys, token, now + timedelta(minutes=15)) is None


def test_verified_tokens_are_bounded_oldest_first() -> None:
    keys, _ = _ring()
    keys.verified = VerifiedTokens(capacity=2)
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    tokens = [issue_access_token(keys, user_id=f"u{i}", role="inspector", session_id=f"s{i}", now=now, ttl_s=900)
              for i in range(3)]
    for token in tokens:
        assert decode_access_token(keys, token, now) is not None
    assert len(keys.verified) == 2
    assert keys.verified.get(tokens[0]) is None and keys.verified.get(tokens[2]) is not None
    assert decode_access_token(keys, tokens[0], now) is not None  # verified afresh, not refused


@pytest.mark.xdist_group("timing")  # it times a database process's stop
async def test_the_database_stops_promptly_while_an_instance_follows_revocations(settings: Settings) -> None:
    # The listener's change stream always has a read in flight; the Rust server finishes it before stopping.
    db = EmbeddedMongo(":memory:")
    db.start()
    try:
        # Its clean-up meets no database: a short server selection.
        instance = bootstrap(settings.model_copy(update={"db_timeout_ms": 300}), db.uri)
        await start_auth(instance)
        try:
            await _cache_on(instance)
            await asyncio.sleep(0.1)  # the stream's first idle read is now held by the server
            started = time.monotonic()
            await asyncio.to_thread(db.stop)
            # About one idle read (IDLE_READ_MS) and the stop itself; with 10 s reads it took up to 10 s.
            assert time.monotonic() - started < 3.0
        finally:
            listener = auth_state(instance).listener_task
            if listener is not None:  # stop_auth would also unregister, from a database now gone
                assert await cancel_listener(listener, within_s=10.0)
            await instance.client.close()
    finally:
        db.stop()
        # The cancelled read's socket is left to the garbage collector: collect it here, not in a later test.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
