"""What an event handler is: a stable name, the event types it wants, and an idempotent function."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from server.context import UnitOfWork
from server.db import Doc

HandleFn = Callable[[UnitOfWork, Doc], Awaitable[None]]


@dataclass(frozen=True)
class EventHandler:
    """`handle(uow, event)` runs inside a transaction together with the handler's idempotency marker,
    so its database effects happen exactly once per event even though delivery is at-least-once.
    Effects outside the database (HTTP, SMTP) are queued as documents in that transaction and sent by
    their own workers. The event is the stored outbox document (see schemas.events.EventEnvelope)."""

    name: str
    event_types: frozenset[str]
    handle: HandleFn
