"""POST /me/password, POST /users/{id}/password-reset, and the password rules."""

from __future__ import annotations

from typing import Any

from server.context import Services
from server.domain.password_rules import MIN_LENGTH, password_problems
from tests.conftest import Api, assert_problem

NEW = "lanterns over the quiet river"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _change(api: Api, token: str, current: str, new: str) -> tuple[int, Any]:
    resp = await api.call("POST", "/api/v1/me/password", headers=_bearer(token),
                          json={"current_password": current, "new_password": new})
    return resp.status, await resp.json(content_type=None)


# --- the rules -------------------------------------------------------------------------------------


def test_password_rules() -> None:
    assert password_problems(NEW, "inspector") == []
    assert password_problems("short", "x") == [f"must be at least {MIN_LENGTH} characters"]
    assert "must not contain the username" in password_problems("zhou.jiancha-2026", "zhou.jiancha")
    assert "must not contain the username" in password_problems("Inspector-Inspector", "INSPECTOR")
    for common in ("password123", "Password1234!", "qwertyuiop", "Summer2026!!", "1234567890", "aaaaaaaaaaaa"):
        assert any("too common" in p for p in password_problems(common, "someone")), common


# --- changing one's own password -------------------------------------------------------------------


async def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(api: Api, services: Services) -> None:
    creds = api.credentials["inspector"]
    phone = await api.login("inspector")
    desk = await api.login("inspector")
    status, body = await _change(api, desk["access_token"], creds["password"], NEW)
    assert status == 200 and body == {"other_sessions_ended": 1}
    assert (await api.call("GET", "/api/v1/me", headers=_bearer(desk["access_token"]))).status == 200
    assert (await api.call("GET", "/api/v1/me", headers=_bearer(phone["access_token"]))).status == 401
    refused = await api.call("POST", "/api/v1/auth/refresh", json={"refresh_token": phone["refresh_token"]})
    assert refused.status == 401
    assert (await api.call("POST", "/api/v1/auth/refresh", json={"refresh_token": desk["refresh_token"]})).status \
        == 200
    wrong = await api.call("POST", "/api/v1/auth/login", json={"username": creds["username"],
                                                               "password": creds["password"]})
    assert wrong.status == 401
    await api.login(creds["username"], NEW)
    entry = await services.db.trail.find_one({"action": "user.change_password"})
    assert entry is not None and entry["summary"] == {"other_sessions_ended": 1}


async def test_a_wrong_current_or_a_refused_new_password_names_the_field(api: Api) -> None:
    creds = api.credentials["compliance"]
    token = (await api.login("compliance"))["access_token"]
    cases = [
        ("not-my-password", NEW, "current_password"),
        (creds["password"], "short", "new_password"),
        (creds["password"], f"{creds['username']}-is-me-2026", "new_password"),
        (creds["password"], "Password2026!", "new_password"),
        (creds["password"], creds["password"], "new_password"),
    ]
    for current, new, field in cases:
        resp = await api.call("POST", "/api/v1/me/password", headers=_bearer(token),
                              json={"current_password": current, "new_password": new})
        body = await resp.json(content_type=None)
        assert_problem(resp, body, 422)
        assert {tuple(e["loc"]) for e in body["errors"]} == {("body", field)}, (new, body)


async def test_guessing_the_current_password_is_throttled_like_a_login(api: Api) -> None:
    token = (await api.login("branch_head"))["access_token"]
    statuses = [(await _change(api, token, f"guess-{i}", NEW))[0] for i in range(5)]
    assert statuses[:3] == [422, 422, 422] and statuses[3] == 429


# --- an admin's reset ------------------------------------------------------------------------------


async def test_a_reset_gives_a_temporary_password_that_must_be_changed(api: Api, services: Services) -> None:
    before = await api.login("inspector")
    user_id = before["user"]["id"]
    resp = await api.call("POST", f"/api/v1/users/{user_id}/password-reset", "admin")
    body = await resp.json()
    assert resp.status == 200 and body["must_change"] is True and body["sessions_ended"] == 1
    assert resp.headers["Cache-Control"] == "no-store"
    temporary = body["temporary_password"]
    assert (await api.call("GET", "/api/v1/me", headers=_bearer(before["access_token"]))).status == 401

    tokens = await api.login(api.credentials["inspector"]["username"], temporary)
    assert tokens["password_change_required"] is True
    token = tokens["access_token"]
    blocked = await api.call("GET", "/api/v1/assignments?mine=true", headers=_bearer(token))
    body = await blocked.json(content_type=None)
    assert_problem(blocked, body, 403)
    assert body["type"].endswith("/password-change-required")
    assert (await api.call("GET", "/api/v1/me", headers=_bearer(token))).status == 200
    status, _ = await _change(api, token, temporary, NEW)
    assert status == 200
    assert (await api.call("GET", "/api/v1/assignments?mine=true", headers=_bearer(token))).status == 200
    again = await api.login(api.credentials["inspector"]["username"], NEW)
    assert again["password_change_required"] is False
    entry = await services.db.trail.find_one({"action": "user.reset_password", "entity_id": user_id})
    assert entry is not None and entry["actor_role"] == "admin"


async def test_only_an_admin_resets_and_only_existing_users(api: Api) -> None:
    me = await api.login("compliance")
    resp = await api.call("POST", f"/api/v1/users/{me['user']['id']}/password-reset", "compliance")
    assert_problem(resp, await resp.json(content_type=None), 403)
    resp = await api.call("POST", "/api/v1/users/no-such-user/password-reset", "admin")
    assert_problem(resp, await resp.json(content_type=None), 404)
