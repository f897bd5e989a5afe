"""Login, refresh-token rotation with reuse detection, logout, and /me."""

from __future__ import annotations

import math
import uuid

from aiohttp import web
from pydantic import BaseModel

from schemas.org import LoginRequest, RefreshRequest, TokenResponse, UserPublic
from server.context import Services
from server.errors import TooManyRequests, Unauthorized
from server.http.api import ApiRouter, body_of, json_response
from server.http.authz import principal
from server.http.request_meta import client_address
from server.keys import CURRENT_USER, SERVICES
from server.security import issue_access_token, new_refresh_token, token_digest
from server.storage import users

router = ApiRouter("auth")


class LoggedOut(BaseModel):
    revoked: bool


async def _issue_tokens(services: Services, user: dict[str, object], session_id: str) -> TokenResponse:
    now = services.clock.now()
    settings = services.settings
    access = issue_access_token(services.jwt_secret, user_id=str(user["_id"]), role=str(user["role"]),
                                session_id=session_id, now=now, ttl_s=settings.access_token_ttl_s)
    refresh = new_refresh_token()
    await users.store_refresh_token(services.db, token_digest(refresh), session_id, str(user["_id"]), now,
                                    settings.refresh_token_ttl_s)
    return TokenResponse(access_token=access, refresh_token=refresh, expires_in=settings.access_token_ttl_s,
                         user=UserPublic.model_validate(users.public_user(user)))


@router.post("/api/v1/auth/login", summary="Exchange username and password for tokens", body=LoginRequest,
             response=TokenResponse, roles=None, extra_responses={401: "Wrong credentials", 429: "Throttled"})
async def login(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await body_of(request, LoginRequest)
    now = services.clock.now()
    settings = services.settings
    keys = [f"user:{body.username.lower()}", f"addr:{client_address(request)}"]
    locked_until = await users.throttle_state(services.db, keys, now)
    if locked_until is not None:
        wait = max(1, math.ceil((locked_until - now).total_seconds()))
        raise TooManyRequests("Too many failed logins; try again later", headers={"Retry-After": str(wait)})
    user = await users.by_username(services.db, body.username)
    # Verify even for an unknown username so both failures take the same time.
    valid = await services.passwords.verify(user["password_hash"] if user else None, body.password)
    if not valid or user is None or not user.get("active", True):
        for key in keys:
            await users.record_failure(services.db, key, now, settings.login_window_s, settings.login_max_failures)
        raise Unauthorized("Wrong username or password")
    await users.clear_failures(services.db, keys[0])
    session_id = str(uuid.uuid4())
    await users.open_session(services.db, session_id, user["_id"], now, settings.refresh_token_ttl_s)
    return json_response(await _issue_tokens(services, user, session_id))


@router.post("/api/v1/auth/refresh", summary="Rotate a refresh token; reuse revokes the whole family",
             body=RefreshRequest, response=TokenResponse, roles=None, extra_responses={401: "Invalid or reused"})
async def refresh(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await body_of(request, RefreshRequest)
    now = services.clock.now()
    outcome, token = await users.use_refresh_token(services.db, token_digest(body.refresh_token), now)
    if outcome == "reused" and token is not None:
        # A used token presented again means it leaked: end every token of that login.
        await users.revoke_session(services.db, token["session_id"], now, "refresh token reuse",
                                   services.settings.access_token_ttl_s)
        raise Unauthorized("Refresh token was already used; the session has been revoked")
    if outcome != "ok" or token is None:
        raise Unauthorized("Refresh token is invalid or expired")
    if not await users.session_active(services.db, token["session_id"]):
        raise Unauthorized("Session has been revoked")
    user = await users.by_id(services.db, token["user_id"])
    if user is None or not user.get("active", True):
        raise Unauthorized("User is no longer active")
    return json_response(await _issue_tokens(services, user, token["session_id"]))


@router.post("/api/v1/auth/logout", summary="Revoke this session's access and refresh tokens", response=LoggedOut)
async def logout(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = principal(request)
    await users.revoke_session(services.db, who.session_id, services.clock.now(), "logout",
                               services.settings.access_token_ttl_s)
    return json_response(LoggedOut(revoked=True))


@router.get("/api/v1/me", summary="The caller's own user record", response=UserPublic)
async def me(request: web.Request) -> web.Response:
    principal(request)
    return json_response(users.public_user(request[CURRENT_USER]))
