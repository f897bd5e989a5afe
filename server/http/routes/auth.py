"""Login, refresh-token rotation with reuse detection, logout, /me, passwords and download tickets."""

from __future__ import annotations

from aiohttp import web

from schemas.auth import (
    DownloadTicket,
    DownloadTicketRequest,
    LoggedOut,
    PasswordChange,
    PasswordChanged,
    SessionTokens,
    TemporaryPassword,
)
from schemas.org import LoginRequest, RefreshRequest, UserPublic
from server import logins
from server.context import ActorInfo
from server.download_tickets import issue_download_ticket
from server.http.api import ApiRouter, body_of, json_response, match_info
from server.http.authz import ADMIN, principal
from server.http.request_meta import actor, client_address
from server.keys import CURRENT_USER, REQUEST_ID, SERVICES
from server.storage import users

router = ApiRouter("auth")


@router.post("/api/v1/auth/login", summary="Exchange username and password for tokens", body=LoginRequest,
             response=SessionTokens, roles=None,
             extra_responses={401: "Wrong credentials", 429: "Throttled: wait Retry-After seconds"})
async def login(request: web.Request) -> web.Response:
    body = await body_of(request, LoginRequest)
    command = logins.LogIn(username=body.username, password=body.password,
                           client_address=client_address(request), request_id=request.get(REQUEST_ID))
    return json_response(await logins.log_in(request.app[SERVICES], command))


@router.post("/api/v1/auth/refresh",
             summary="Rotate a refresh token; the previous one again within seconds gets the same successor, "
                     "any other reuse revokes the whole family",
             body=RefreshRequest, response=SessionTokens, roles=None, extra_responses={401: "Invalid or reused"})
async def refresh(request: web.Request) -> web.Response:
    body = await body_of(request, RefreshRequest)
    who = ActorInfo(user_id=None, role="anonymous", request_id=request.get(REQUEST_ID),
                    client_address=client_address(request))
    return json_response(await logins.refresh_session(request.app[SERVICES], body.refresh_token, who))


@router.post("/api/v1/auth/logout", summary="Revoke this session's access and refresh tokens", response=LoggedOut)
async def logout(request: web.Request) -> web.Response:
    await logins.log_out(request.app[SERVICES], actor(request), principal(request).session_id)
    return json_response(LoggedOut(revoked=True))


@router.get("/api/v1/me", summary="The caller's own user record", response=UserPublic)
async def me(request: web.Request) -> web.Response:
    principal(request)
    return json_response(users.public_user(request[CURRENT_USER]))


@router.post("/api/v1/me/password", summary="Change one's own password; the other sessions end, this one stays",
             body=PasswordChange, response=PasswordChanged,
             extra_responses={422: "Current password wrong, or new password refused (errors name the field)",
                              429: "Too many wrong passwords"})
async def change_my_password(request: web.Request) -> web.Response:
    body = await body_of(request, PasswordChange)
    ended = await logins.change_password(
        request.app[SERVICES], actor(request), principal(request).session_id,
        logins.ChangePassword(current_password=body.current_password, new_password=body.new_password))
    return json_response(PasswordChanged(other_sessions_ended=ended))


@router.post("/api/v1/users/{user_id}/password-reset",
             summary="Give a user a temporary password (shown once), to be changed at their next login; "
                     "their sessions end",
             response=TemporaryPassword, roles={ADMIN})
async def reset_password(request: web.Request) -> web.Response:
    result = await logins.reset_password(request.app[SERVICES], actor(request), match_info(request, "user_id"))
    return json_response(result, headers={"Cache-Control": "no-store"})


@router.post("/api/v1/download-tickets",
             summary="A single-use URL, valid for seconds, for a browser download of an export, an audit report "
                     "or a photo (authorized as the caller when used)",
             body=DownloadTicketRequest, response=DownloadTicket, status=201)
async def create_download_ticket(request: web.Request) -> web.Response:
    body = await body_of(request, DownloadTicketRequest)
    who = principal(request)
    ticket = await issue_download_ticket(request.app[SERVICES], who.user_id, who.session_id, body.path)
    return json_response(ticket, status=201, headers={"Cache-Control": "no-store"})
