"""POST /auth/login, /auth/refresh, /auth/logout and GET /me."""

from __future__ import annotations

import time
from datetime import timedelta

from server.clock import FakeClock
from tests.conftest import Api, assert_problem


async def test_login_returns_tokens_and_user(api: Api) -> None:
    body = await api.login("inspector")
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert body["user"]["role"] == "inspector"
    assert "password_hash" not in body["user"]
    me = await api.json("GET", "/api/v1/me", "inspector", expect=200)
    assert me["username"] == api.credentials["inspector"]["username"]
    assert me["created_at"].endswith("Z")


async def test_login_wrong_password_and_unknown_user_look_the_same(api: Api) -> None:
    user = api.credentials["inspector"]["username"]
    started = time.perf_counter()
    r1 = await api.call("POST", "/api/v1/auth/login", json={"username": user, "password": "wrong-password"})
    t1 = time.perf_counter() - started
    started = time.perf_counter()
    r2 = await api.call("POST", "/api/v1/auth/login", json={"username": "nobody-here", "password": "wrong-password"})
    t2 = time.perf_counter() - started
    b1, b2 = await r1.json(content_type=None), await r2.json(content_type=None)
    assert r1.status == r2.status == 401
    assert b1["detail"] == b2["detail"]
    # Both paths verify an argon2 hash; neither answers instantly.
    assert min(t1, t2) > 0.0005


async def test_login_is_throttled_after_repeated_failures(api: Api) -> None:
    user = api.credentials["compliance"]["username"]
    for _ in range(5):
        r = await api.call("POST", "/api/v1/auth/login", json={"username": user, "password": "nope-nope"})
        assert r.status == 401
    r = await api.call("POST", "/api/v1/auth/login",
                       json={"username": user, "password": api.credentials["compliance"]["password"]})
    body = await r.json(content_type=None)
    assert_problem(r, body, 429)
    assert int(r.headers["Retry-After"]) > 0


async def test_throttle_lifts_after_the_window(api: Api, clock: FakeClock) -> None:
    user = api.credentials["compliance"]["username"]
    for _ in range(5):
        await api.call("POST", "/api/v1/auth/login", json={"username": user, "password": "nope-nope"})
    clock.advance(timedelta(minutes=16))
    await api.login("compliance")


async def test_throttle_by_client_address_covers_many_usernames(api: Api) -> None:
    for i in range(5):
        await api.call("POST", "/api/v1/auth/login", json={"username": f"guess{i}", "password": "nope-nope"})
    r = await api.call("POST", "/api/v1/auth/login",
                       json={"username": api.credentials["admin"]["username"],
                             "password": api.credentials["admin"]["password"]})
    assert r.status == 429


async def test_refresh_rotates_and_reuse_revokes_the_family(api: Api) -> None:
    first = await api.login("branch_head")
    second = await api.json("POST", "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]},
                            expect=200)
    assert second["refresh_token"] != first["refresh_token"]
    third = await api.json("POST", "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]},
                           expect=200)
    # The first token again: a thief replaying it. The whole family dies.
    r = await api.call("POST", "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert_problem(r, await r.json(content_type=None), 401)
    r = await api.call("POST", "/api/v1/auth/refresh", json={"refresh_token": third["refresh_token"]})
    assert r.status == 401
    r = await api.call("GET", "/api/v1/me", headers={"Authorization": f"Bearer {third['access_token']}"})
    assert r.status == 401


async def test_logout_revokes_access_and_refresh(api: Api) -> None:
    tokens = await api.login("inspector")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await api.call("POST", "/api/v1/auth/logout", headers=headers)).status == 200
    assert (await api.call("GET", "/api/v1/me", headers=headers)).status == 401
    r = await api.call("POST", "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status == 401


async def test_access_token_expires(api: Api, clock: FakeClock) -> None:
    await api.login("inspector")
    clock.advance(timedelta(minutes=16))
    r = await api.call("GET", "/api/v1/me", "inspector")
    assert_problem(r, await r.json(content_type=None), 401)


async def test_bad_tokens_are_401_problems(api: Api) -> None:
    for header in ("", "Bearer", "Bearer not.a.jwt", "Basic abc", "Bearer " + "x" * 5000):
        r = await api.call("GET", "/api/v1/me", headers={"Authorization": header} if header else {})
        assert_problem(r, await r.json(content_type=None), 401)


async def test_login_validation_errors_name_the_field(api: Api) -> None:
    r = await api.call("POST", "/api/v1/auth/login", json={"username": "x"})
    body = await r.json(content_type=None)
    assert_problem(r, body, 422)
    assert body["errors"][0]["loc"] == ["body", "password"]
