"""Expired, revoked (logout) and replayed-refresh tokens stop working on every authenticated endpoint, not only
on /me (tests/test_auth.py covers the auth endpoints themselves)."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import timedelta
from typing import Any

import jwt
from aiohttp import ClientSession

from server.auth_state import auth_state, build_auth_state, start_auth, stop_auth
from server.clock import FakeClock
from server.context import Services
from server.http.routes import all_routers
from server.security import SigningKey, SigningKeys, issue_access_token, key_id
from tests.conftest import Api, assert_problem, reconfigure
from tests.instances import serving

PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")


def authenticated_operations() -> list[tuple[str, str]]:
    ops = []
    for router in all_routers():
        for op in router.operations:
            if op.roles is None or op.path in ("/api/v1/auth/logout",):
                continue
            path = PARAM.sub(lambda m: "1" if m.group(1) == "version" else str(uuid.uuid4()), op.path)
            ops.append((op.method, path))
    return ops


async def assert_all_refused(api: Api, token: str, why: str) -> None:
    failures = []
    for method, path in authenticated_operations():
        resp = await api.call(method, path, headers={"Authorization": f"Bearer {token}"})
        if resp.status != 401:
            failures.append(f"{method} {path}: {resp.status}")
        elif method != "HEAD" and resp.content_type != "application/problem+json":
            failures.append(f"{method} {path}: 401 as {resp.content_type}")
    assert failures == [], f"{why}:\n" + "\n".join(failures)


def test_the_sweep_covers_every_area() -> None:
    prefixes = {path.split("/")[3] for _, path in authenticated_operations()}
    assert {"audits", "rectifications", "photos", "reports", "exports", "events", "webhooks", "users"} <= prefixes


async def test_an_expired_access_token_is_refused_everywhere(api: Api, clock: FakeClock) -> None:
    tokens = await api.login("compliance")
    assert (await api.call("GET", "/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
            ).status == 200
    clock.advance(timedelta(seconds=tokens["expires_in"] + 1))
    await assert_all_refused(api, tokens["access_token"], "expired access token")
    # The refresh token still works and gives a fresh access token.
    fresh = await api.json("POST", "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]},
                           expect=200)
    me = await api.call("GET", "/api/v1/me", headers={"Authorization": f"Bearer {fresh['access_token']}"})
    assert me.status == 200


async def test_a_logged_out_token_is_refused_everywhere(api: Api) -> None:
    tokens = await api.login("admin")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await api.call("GET", "/api/v1/webhooks", headers=headers)).status == 200
    assert (await api.call("POST", "/api/v1/auth/logout", headers=headers)).status == 200
    await assert_all_refused(api, tokens["access_token"], "logged-out access token")
    resp = await api.call("POST", "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_problem(resp, await resp.json(content_type=None), 401)


async def test_a_replayed_refresh_token_kills_the_access_tokens_of_its_family(api: Api, clock: FakeClock) -> None:
    first = await api.login("branch_head")
    second = await api.json("POST", "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]},
                            expect=200)
    headers = {"Authorization": f"Bearer {second['access_token']}"}
    assert (await api.call("GET", "/api/v1/rectifications", headers=headers)).status == 200
    clock.advance(timedelta(minutes=1))  # past the grace for a lost response: a replay
    replay = await api.call("POST", "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status == 401
    await assert_all_refused(api, second["access_token"], "access token of a revoked family")


async def test_a_token_signed_with_another_secret_or_forged_role_is_refused(api: Api) -> None:
    tokens = await api.login("inspector")
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    forged = jwt.encode({**claims, "role": "admin"}, "not-the-secret-" + "x" * 32, algorithm="HS256")
    unsigned = jwt.encode({**claims, "role": "admin"}, None, algorithm="none")
    for token in (forged, unsigned):
        resp = await api.call("GET", "/api/v1/users", headers={"Authorization": f"Bearer {token}"})
        assert_problem(resp, await resp.json(content_type=None), 401)


# --- signing-key rotation --------------------------------------------------------------------------


async def test_a_token_of_the_previous_key_works_until_it_expires_then_the_key_retires(
        services: Services, demo: dict[str, dict[str, str]], clock: FakeClock) -> None:
    old = SigningKeys(SigningKey.of("old-signing-secret-" + "o" * 32))
    reconfigure(services, jwt_previous_secret=old.current.secret)
    services.shared.auth = build_auth_state(services.settings)
    async with serving(services) as base, ClientSession() as http:
        api = Api(http, base, demo)
        tokens = await api.login("compliance")
        claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        ttl = services.settings.access_token_ttl_s
        # Issued just before the rotation by an instance still on the old key.
        from_old_key = issue_access_token(old, user_id=claims["sub"], role=claims["role"], session_id=claims["sid"],
                                          now=clock.now() - timedelta(seconds=1), ttl_s=ttl)
        forged_long = issue_access_token(old, user_id=claims["sub"], role=claims["role"], session_id=claims["sid"],
                                         now=clock.now(), ttl_s=ttl * 10)
        unknown_kid = jwt.encode({**claims, "exp": claims["exp"] + 60}, services.settings.jwt_secret,
                                 algorithm="HS256", headers={"kid": "0123456789abcdef"})
        no_kid = jwt.encode(claims, services.settings.jwt_secret, algorithm="HS256")

        async def status(token: str) -> int:
            return (await api.call("GET", "/api/v1/me", headers={"Authorization": f"Bearer {token}"})).status

        assert await status(from_old_key) == 200
        assert await status(unknown_kid) == 401
        assert await status(no_kid) == 401
        clock.advance(timedelta(seconds=ttl - 2))
        assert await status(from_old_key) == 200
        clock.advance(timedelta(seconds=2))
        assert await status(from_old_key) == 401  # expired
        # One access-token lifetime after the new key came into use, the old key is not honoured at all.
        assert await status(forged_long) == 401
        fresh = await api.json("POST", "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]},
                               expect=200)
        assert jwt.get_unverified_header(fresh["access_token"])["kid"] == key_id(services.settings.jwt_secret or "")
        assert await status(fresh["access_token"]) == 200
    # A restart does not reopen the window: the new key's first use is remembered in the database.
    services.shared.auth = build_auth_state(services.settings)
    await start_auth(services)
    try:
        assert auth_state(services).keys.key_for(old.current.kid, clock.now()) is None
    finally:
        await stop_auth(services)


# --- a lost refresh response -----------------------------------------------------------------------


async def _refresh(api: Api, token: str) -> tuple[int, dict[str, Any]]:
    resp = await api.call("POST", "/api/v1/auth/refresh", json={"refresh_token": token})
    return resp.status, await resp.json(content_type=None)


async def test_the_previous_refresh_token_again_within_seconds_gets_the_same_successor(
        api: Api, clock: FakeClock) -> None:
    first = await api.login("inspector")
    status, lost = await _refresh(api, first["refresh_token"])  # the phone never saw this answer
    assert status == 200
    clock.advance(timedelta(seconds=5))
    status, retried = await _refresh(api, first["refresh_token"])
    assert status == 200
    assert retried["refresh_token"] == lost["refresh_token"]
    me = await api.call("GET", "/api/v1/me", headers={"Authorization": f"Bearer {retried['access_token']}"})
    assert me.status == 200
    status, following = await _refresh(api, retried["refresh_token"])
    assert status == 200 and following["refresh_token"] != retried["refresh_token"]


async def test_two_tabs_refreshing_at_once_both_get_the_same_successor(api: Api) -> None:
    first = await api.login("compliance")
    (s1, b1), (s2, b2) = await asyncio.gather(_refresh(api, first["refresh_token"]),
                                              _refresh(api, first["refresh_token"]))
    assert s1 == s2 == 200
    assert b1["refresh_token"] == b2["refresh_token"]


async def test_the_previous_refresh_token_after_the_grace_revokes_the_family(api: Api, clock: FakeClock) -> None:
    first = await api.login("inspector")
    _, second = await _refresh(api, first["refresh_token"])
    clock.advance(timedelta(seconds=11))
    status, body = await _refresh(api, first["refresh_token"])
    assert status == 401 and "revoked" in body["detail"]
    assert (await _refresh(api, second["refresh_token"]))[0] == 401


async def test_an_older_generation_within_the_grace_still_revokes_the_family(api: Api, services: Services) -> None:
    first = await api.login("branch_head")
    _, second = await _refresh(api, first["refresh_token"])
    _, third = await _refresh(api, second["refresh_token"])
    status, _ = await _refresh(api, first["refresh_token"])  # two generations back, at once
    assert status == 401
    assert (await _refresh(api, third["refresh_token"]))[0] == 401
    me = await api.call("GET", "/api/v1/me", headers={"Authorization": f"Bearer {third['access_token']}"})
    assert me.status == 401
    entry = await services.db.trail.find_one({"action": "session.end", "summary.reason": "refresh token reuse"})
    assert entry is not None and entry["entity_id"] == first["user"]["id"]
