"""Typed keys for what lives on the application and on each request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from server.context import Services

if TYPE_CHECKING:
    from server.http.api import Operation
    from server.http.authz import Principal

SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal", object)  # type: ignore[arg-type]
OPERATION: web.RequestKey[Operation] = web.RequestKey("operation", object)  # type: ignore[arg-type]
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)
CURRENT_USER: web.RequestKey[dict[str, Any]] = web.RequestKey("current_user", dict)
EXTRA: web.RequestKey[dict[str, Any]] = web.RequestKey("extra", dict)
# A download ticket taken out of the query (server.http.authn), redeemed when the route authenticates.
DOWNLOAD_TICKET: web.RequestKey[str] = web.RequestKey("download_ticket", str)
