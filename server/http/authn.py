"""Who is calling: a bearer access token, or a single-use download ticket on a few GET paths (browsers
cannot send a header with a download, and access tokens never go in URLs). Users are read from the
instance's short cache when it may be trusted (server.auth_state), else from the database."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from aiohttp import web
from yarl import URL

from server.auth_state import auth_state, revocations_reach_every_instance
from server.context import Services
from server.db import Doc
from server.errors import Forbidden, Unauthorized
from server.keys import DOWNLOAD_TICKET, OPERATION, SERVICES
from server.security import decode_access_token, token_digest
from server.storage import auth as auth_store

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TICKET_PARAM = "ticket"
# Downloads a browser starts by navigating: exports, the audit PDF, photos. Nothing else takes a ticket.
TICKETABLE = re.compile(r"^/api/v1/(exports/[^/]+|audits/[^/]+/report\.pdf|photos/[^/]+(/thumbnail)?)$")
# What a user who must change their password may still do.
ALLOWED_BEFORE_PASSWORD_CHANGE = frozenset({
    ("GET", "/api/v1/me"), ("POST", "/api/v1/me/password"), ("POST", "/api/v1/auth/logout"),
})
INVALID_TOKEN = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class PasswordChangeRequired(Forbidden):
    slug, title = "password-change-required", "Password change required"


def ticketable(path: str) -> bool:
    return bool(TICKETABLE.match(path))


def ticket_target(url: URL) -> str:
    """A download's path and query in one canonical form (the ticket parameter left out)."""
    query = sorted((k, v) for k, v in url.query.items() if k != TICKET_PARAM)
    return str(URL.build(path=url.path, query=query)) if query else url.path


async def authenticated_user(request: web.Request) -> tuple[Doc, str]:
    """The caller's user document and session id, or 401."""
    services = request.app[SERVICES]
    header = request.headers.get("Authorization", "")
    # A bearer header wins over a ticket; looking for an absent ticket costs a KeyError, so only without one.
    ticket = None if header else request.get(DOWNLOAD_TICKET)
    if ticket is not None:
        user_id, session_id = await _redeem_ticket(services, request, ticket)
    else:
        user_id, session_id = _bearer(services, header)
    user = await _user(services, user_id)
    revoked = {entry["sid"] for entry in (user or {}).get("revoked_sessions", [])}
    if user is None or not user.get("active", True) or session_id in revoked:
        raise Unauthorized("Session is no longer valid", headers=INVALID_TOKEN)
    op = request.get(OPERATION)
    if user.get("must_change_password") and (op is None or (op.method, op.path) not in ALLOWED_BEFORE_PASSWORD_CHANGE):
        raise PasswordChangeRequired("Change your password first: POST /api/v1/me/password")
    return user, session_id


def _bearer(services: Services, header: str) -> tuple[str, str]:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Send Authorization: Bearer <access_token>", headers={"WWW-Authenticate": "Bearer"})
    claims = decode_access_token(auth_state(services).keys, token.strip(), services.clock.now())
    if claims is None:
        raise Unauthorized("Access token is invalid or expired", headers=INVALID_TOKEN)
    return str(claims["sub"]), str(claims["sid"])


async def _user(services: Services, user_id: str) -> Doc | None:
    cache = auth_state(services).cache
    user = cache.get(user_id)
    if user is not None:
        return user
    generation = cache.generation
    user = await services.db.users.find_one({"_id": user_id}, {"password_hash": 0})
    if user is not None:
        cache.put(user_id, user, generation)
    return user


async def _redeem_ticket(services: Services, request: web.Request, ticket: str) -> tuple[str, str]:
    if request.method != "GET" or not ticketable(request.path):
        raise Unauthorized("Download tickets are only accepted on export, report and photo downloads")
    found = await auth_store.redeem_ticket(services.db, token_digest(ticket), ticket_target(request.rel_url),
                                           services.clock.now())
    if found is None:
        raise Unauthorized("Download ticket is unknown, used, expired or for another download")
    return str(found["user_id"]), str(found["session_id"])


def build_auth_middlewares() -> list[Callable[..., Awaitable[web.StreamResponse]]]:
    @web.middleware
    async def authentication_context(request: web.Request, handler: Handler) -> web.StreamResponse:
        # One middleware, not two: every request passes through it, and each layer costs a call.
        if request.method == "GET" and request.query_string and TICKET_PARAM in request.query:
            # The ticket leaves the query before the route reads it, so routes' query models stay as they are.
            ticket = request.query[TICKET_PARAM]
            request = request.clone(rel_url=request.rel_url.without_query_params(TICKET_PARAM))
            request[DOWNLOAD_TICKET] = ticket
        services = request.app.get(SERVICES)
        if services is None:  # an application without the service's dependencies (tests of the middleware)
            return await handler(request)
        # A request that ended sessions answers only once no instance trusts them any more.
        async with revocations_reach_every_instance(services):
            return await handler(request)

    return [authentication_context]
