"""Use cases: one module per aggregate, one async function per command (see docs/ARCHITECTURE.md).

A command is named as an imperative verb in the domain's words and takes the services, the caller and a
small typed command: `release_audit(services, caller, audit_id, origin=...)`. It authorizes with
server.domain.access, decides with the I/O-free rules of server.domain, writes through server.storage and
emits its events and records its trail entry inside ONE `services.transact(...)`. Routes parse, call and
serialize; event handlers, jobs, the CLI, the demo and the test factories call the same functions.

Commands that an event handler or a job runs inside a transaction it already holds take the unit of work
instead (their names end in `_in`), so the handler's idempotency marker commits with their effects."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from pymongo.errors import DuplicateKeyError

from server.context import ActorInfo, Services, UnitOfWork
from server.domain import access
from server.domain.access import Principal
from server.errors import Conflict, NotFound, field_error


@dataclass(frozen=True)
class Origin:
    """Where a command came from, for the trail: the route passes what it knows of the request."""

    request_id: str | None = None
    client_address: str | None = None


NO_ORIGIN = Origin()
T = TypeVar("T")


def found(doc: T | None, what: str) -> T:
    """`doc`, or a 404 saying that `what` ("Audit") was not found."""
    if doc is None:
        raise NotFound(f"{what} not found")
    return doc


async def transact_unique(services: Services, actor: ActorInfo, work: Callable[[UnitOfWork], Awaitable[T]],
                          field: str, conflict: str) -> T:
    """`services.transact(actor, work)`, where a unique value already taken (a code, a username) is a 409
    naming the body's `field`."""
    try:
        return await services.transact(actor, work)
    except DuplicateKeyError:
        raise Conflict(conflict, errors=[field_error(["body", field], "taken")]) from None


def require_role_unless_operator(caller: Principal | None, roles: frozenset[str]) -> None:
    """Commands the operator may also run from the command line (caller None, before any admin exists)."""
    if caller is not None:
        access.require_role(caller, roles)


def actor_of(caller: Principal | None, origin: Origin = NO_ORIGIN) -> ActorInfo:
    """The actor written on the events and trail entries of the caller's command; no caller is the operator
    on the command line (or the first start's demo seeding), who acts as the system."""
    if caller is None:
        return ActorInfo.system("cli")
    return ActorInfo(
        user_id=caller.user_id,
        role=caller.role,
        request_id=origin.request_id,
        client_address=origin.client_address,
    )


__all__ = ["NO_ORIGIN", "Origin", "actor_of", "found", "require_role_unless_operator", "transact_unique"]
