"""Where webhooks may be sent: http(s) URLs whose host resolves only to public addresses, so a
subscription cannot be used to probe the internal network (checked when subscribing, and again on
every connection through a resolver, which also defeats DNS rebinding)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(ValueError):
    """The URL is not an allowed webhook target; the message says why."""


def address_allowed(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address_allowed(address.ipv4_mapped)
    return not (address.is_loopback or address.is_private or address.is_link_local or address.is_multicast
                or address.is_reserved or address.is_unspecified or not address.is_global)


def split_target(url: str) -> tuple[str, int]:
    """Host and port of an http(s) URL; TargetRefused for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("only http and https URLs are allowed")
    if not parts.hostname:
        raise TargetRefused("the URL has no host")
    if parts.username or parts.password:
        raise TargetRefused("credentials in the URL are not allowed")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("the URL's port is invalid") from None
    return parts.hostname, port


def check_addresses(host: str, addresses: list[str]) -> None:
    if not addresses:
        raise TargetRefused(f"{host} does not resolve")
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if not address_allowed(address):
            raise TargetRefused(f"{host} resolves to a non-public address ({address})")


async def check_target(url: str, *, allow_private: bool) -> None:
    """Refuse URLs that are malformed or, unless allowed, point at non-public addresses."""
    host, port = split_target(url)
    if allow_private:
        return
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        check_addresses(host, [str(literal)])
        return
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TargetRefused(f"{host} does not resolve ({exc.strerror or exc})") from None
    check_addresses(host, [str(info[4][0]) for info in infos])


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that refuses hosts resolving to non-public addresses at connection time."""

    def __init__(self, allow_private: bool, inner: AbstractResolver | None = None) -> None:
        self.allow_private = allow_private
        self.inner = inner or DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        if not self.allow_private:
            check_addresses(host, [r["host"] for r in results])
        return results

    async def close(self) -> None:
        await self.inner.close()
