"""Who is calling from where: request ids and client addresses for logs, events and the trail."""

from __future__ import annotations

import contextvars
import functools
import ipaddress
import re

from aiohttp import web

from server.context import ActorInfo
from server.http.authz import principal
from server.keys import REQUEST_ID, SERVICES
from server.services import Origin

current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def acceptable_request_id(value: str | None) -> bool:
    return bool(value) and bool(_SAFE_REQUEST_ID.match(value or ""))


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def trusted_networks(setting: str) -> tuple[Network, ...]:
    """TRUSTED_PROXIES parsed: comma-separated addresses or CIDRs (ValueError names a bad entry)."""
    networks = []
    for entry in (part.strip() for part in setting.split(",")):
        if entry:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"TRUSTED_PROXIES: {entry!r} is not an address or CIDR") from None
    return tuple(networks)


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_from_forwarded(peer: str, forwarded_for: list[str], networks: tuple[Network, ...]) -> str:
    """The real client: the right-most X-Forwarded-For address that is not a trusted proxy. Entries left
    of it were written by the client itself, so they are never believed; from an untrusted peer, the
    header is not believed at all."""
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    client = peer
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return client  # garbage where an address should be: the last hop a trusted proxy vouched for
        client = hop
        if not _trusted(hop, networks):
            return hop
    return client


def client_address(request: web.Request) -> str:
    """Who is calling, for throttling, the trail and the logs (TRUSTED_PROXIES decides whom to believe)."""
    peer = request.remote or "unknown"
    services = request.app.get(SERVICES)
    setting = services.settings.trusted_proxies if services is not None else ""
    if not setting:
        return peer
    return client_from_forwarded(peer, request.headers.getall("X-Forwarded-For", []), trusted_networks(setting))


def actor(request: web.Request) -> ActorInfo:
    who = principal(request)
    return ActorInfo(user_id=who.user_id, role=who.role, request_id=request.get(REQUEST_ID),
                     client_address=client_address(request))


def origin(request: web.Request) -> Origin:
    """What a command records of the request it came in (server.services)."""
    return Origin(request_id=request.get(REQUEST_ID), client_address=client_address(request))
