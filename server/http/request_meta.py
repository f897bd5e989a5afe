"""Who is calling from where: request ids and client addresses for logs, events and the trail."""

from __future__ import annotations

import contextvars
import re

from aiohttp import web

from server.context import ActorInfo
from server.http.authz import principal
from server.keys import REQUEST_ID
from server.services import Origin

current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def acceptable_request_id(value: str | None) -> bool:
    return bool(value) and bool(_SAFE_REQUEST_ID.match(value or ""))


def client_address(request: web.Request) -> str:
    # X-Forwarded-For is not trusted: behind a proxy, configure the proxy to set the peer address.
    return request.remote or "unknown"


def actor(request: web.Request) -> ActorInfo:
    who = principal(request)
    return ActorInfo(user_id=who.user_id, role=who.role, request_id=request.get(REQUEST_ID),
                     client_address=client_address(request))


def origin(request: web.Request) -> Origin:
    """What a command records of the request it came in (server.services)."""
    return Origin(request_id=request.get(REQUEST_ID), client_address=client_address(request))
