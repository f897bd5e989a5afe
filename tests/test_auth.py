"""POST /auth/login, /auth/refresh, /auth/logout and GET /me; login throttling and the client address
behind trusted proxies."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from server.clock import FakeClock
from server.context import Services
from tests.conftest import Api, assert_problem, reconfigure


async def _login(api: Api, username: str, password: str, address: str | None = None) -> Any:
    headers = {"X-Forwarded-For": address} if address else {}
    return await api.call("POST", "/api/v1/auth/login", json={"username": username, "password": password},
                          headers=headers)


async def test_login_returns_tokens_and_user(api: Api) -> None:
    body = await api.login("inspector")
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert body["user"]["role"] == "inspector"
    assert body["password_change_required"] is False
    assert "password_hash" not in body["user"]
    me = await api.json("GET", "/api/v1/me", "inspector", expect=200)
    assert me["username"] == api.credentials["inspector"]["username"]
    assert me["created_at"].endswith("Z")


async def test_login_wrong_password_and_unknown_user_look_the_same(api: Api) -> None:
    user = api.credentials["inspector"]["username"]
    started = time.perf_counter()
    r1 = await _login(api, user, "wrong-password")
    t1 = time.perf_counter() - started
    started = time.perf_counter()
    r2 = await _login(api, "nobody-here", "wrong-password")
    t2 = time.perf_counter() - started
    b1, b2 = await r1.json(content_type=None), await r2.json(content_type=None)
    assert r1.status == r2.status == 401
    assert b1["detail"] == b2["detail"]
    # Both paths verify an argon2 hash; neither answers instantly.
    assert min(t1, t2) > 0.0005


# --- throttling per account ------------------------------------------------------------------------


async def test_an_account_gets_growing_delays_then_a_lock(api: Api, clock: FakeClock) -> None:
    user = api.credentials["compliance"]["username"]
    for _ in range(3):  # a few mistakes are free
        assert (await _login(api, user, "nope-nope")).status == 401
    r = await _login(api, user, "nope-nope")
    body = await r.json(content_type=None)
    assert_problem(r, body, 429)
    assert body["reason"] == "account_delay" and r.headers["Retry-After"] == "1"
    delays = []
    for _ in range(7):  # failures 4..10: each waits twice as long as the one before
        waited = int((await _login(api, user, "nope-nope")).headers.get("Retry-After", "0"))
        clock.advance(timedelta(seconds=waited))
        delays.append(waited)
        assert (await _login(api, user, "nope-nope")).status == 401
    assert delays == [1, 2, 4, 8, 16, 32, 64]
    # Ten failures: locked, even with the right password.
    r = await _login(api, user, api.credentials["compliance"]["password"])
    body = await r.json(content_type=None)
    assert_problem(r, body, 429)
    assert body["reason"] == "account_locked" and int(r.headers["Retry-After"]) > 800
    clock.advance(timedelta(minutes=15))
    await api.login("compliance")


async def test_a_locked_account_is_locked_from_every_address(api: Api, services: Services,
                                                             clock: FakeClock) -> None:
    reconfigure(services, trusted_proxies="127.0.0.1")
    user = api.credentials["inspector"]["username"]
    for i in range(10):
        r = await _login(api, user, "nope-nope", address=f"198.51.100.{i}")
        clock.advance(timedelta(minutes=1, seconds=5))
        assert r.status == 401, i
    r = await _login(api, user, api.credentials["inspector"]["password"], address="203.0.113.200")
    assert r.status == 429


async def test_failures_on_other_accounts_never_refuse_a_correct_login(api: Api) -> None:
    """The reported case: a made-up username typed five times, then the compliance officer, same address."""
    for _ in range(5):
        await _login(api, "made-up-name", "wrong-password")
    for role in ("inspector", "branch_head"):
        for _ in range(4):
            await _login(api, api.credentials[role]["username"], "wrong-password")
    r = await _login(api, api.credentials["compliance"]["username"], api.credentials["compliance"]["password"])
    assert r.status == 200, await r.text()


async def test_a_success_clears_the_account_failures(api: Api, clock: FakeClock) -> None:
    user = api.credentials["admin"]["username"]
    for _ in range(3):
        await _login(api, user, "nope-nope")
    clock.advance(timedelta(seconds=1))
    await api.login("admin")
    for _ in range(3):
        assert (await _login(api, user, "nope-nope")).status == 401


# --- throttling per address ------------------------------------------------------------------------


async def test_spraying_many_usernames_locks_that_address_only(api: Api, services: Services) -> None:
    reconfigure(services, trusted_proxies="127.0.0.1")
    sprayer, office = "192.0.2.66", "192.0.2.10"
    limit = services.settings.login_address_max_usernames
    for i in range(limit):
        assert (await _login(api, f"guess{i}", "Summer2026!", address=sprayer)).status == 401
    r = await _login(api, api.credentials["admin"]["username"], api.credentials["admin"]["password"],
                     address=sprayer)
    body = await r.json(content_type=None)
    assert_problem(r, body, 429)
    assert body["reason"] == "address_locked"
    r = await _login(api, api.credentials["admin"]["username"], api.credentials["admin"]["password"],
                     address=office)
    assert r.status == 200


async def test_one_person_mistyping_many_times_does_not_lock_the_address(api: Api, clock: FakeClock) -> None:
    user = api.credentials["inspector"]["username"]
    for _ in range(12):
        await _login(api, user, "nope-nope")
        clock.advance(timedelta(seconds=70))
    await api.login("compliance")


async def test_every_refusal_is_in_the_trail_and_the_metrics(api: Api, services: Services) -> None:
    user = api.credentials["branch_head"]["username"]
    for _ in range(4):
        await _login(api, user, "nope-nope")
    refusals = await services.db.trail.find({"action": "login.refuse"}).to_list()
    assert len(refusals) == 1
    assert refusals[0]["summary"]["reason"] == "account_delay"
    assert refusals[0]["client_address"] == "127.0.0.1"
    assert await services.db.trail.count_documents({"action": "login.fail"}) == 3
    metrics = await (await api.call("GET", "/metrics")).text()
    assert "branch_audit_login_refusals_account_delay_total 1" in metrics
    assert "branch_audit_login_failures_total 3" in metrics


async def test_login_and_logout_leave_trail_entries(api: Api, services: Services) -> None:
    tokens = await api.login("inspector")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await api.call("POST", "/api/v1/auth/logout", headers=headers)).status == 200
    # Counted after the demo's own entry for this person (its creation by the admin).
    entries = await services.db.trail.find(
        {"entity_id": tokens["user"]["id"], "action": {"$ne": "user.create"}}).to_list()
    actions = sorted((e["action"], e["summary"].get("reason") or "") for e in entries)
    assert actions == [("session.end", "logout"), ("session.open", "")]


# --- the client behind trusted proxies ------------------------------------------------------------


async def test_forwarded_address_is_used_only_from_a_trusted_proxy(api: Api, services: Services) -> None:
    async def session_address(forwarded: str) -> str:
        r = await _login(api, api.credentials["inspector"]["username"], api.credentials["inspector"]["password"],
                         address=forwarded)
        assert r.status == 200
        session = await services.db.sessions.find_one({})
        entry = await services.db.trail.find_one({"action": "session.open"})
        assert session is not None and entry is not None
        assert entry["client_address"] == session["client_address"]
        await services.db.sessions.delete_many({})
        await services.db.trail.delete_many({})
        return str(session["client_address"])

    # Without TRUSTED_PROXIES the header is ignored, as before.
    assert await session_address("203.0.113.5") == "127.0.0.1"
    reconfigure(services, trusted_proxies="10.0.0.0/8")  # the peer (127.0.0.1) is not one of them
    assert await session_address("203.0.113.5") == "127.0.0.1"
    reconfigure(services, trusted_proxies="127.0.0.1, 10.0.0.0/8")
    # Right-most untrusted entry: what the client wrote on the left is not believed.
    assert await session_address("1.2.3.4, 203.0.113.5, 10.1.2.3") == "203.0.113.5"


# --- refresh and logout ----------------------------------------------------------------------------


async def test_refresh_rotates_and_reuse_revokes_the_family(api: Api, clock: FakeClock) -> None:
    first = await api.login("branch_head")
    second = await api.json("POST", "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]},
                            expect=200)
    assert second["refresh_token"] != first["refresh_token"]
    third = await api.json("POST", "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]},
                           expect=200)
    # The first token again: two generations back, a thief replaying it. The whole family dies.
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
