"""What an event handler is: a stable name, the event types it wants, and an idempotent function.

Handlers are written with `reacting(name, on(PayloadModel, react), ...)`: each reaction subscribes by
payload type (so a renamed event fails at start-up, and mypy checks the payload) and receives the payload
parsed into that model. Only a handler that forwards every event as it is (webhooks) takes raw events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from schemas.events import event_name_of
from server.context import UnitOfWork
from server.db import Doc

HandleFn = Callable[[UnitOfWork, Doc], Awaitable[None]]
P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True)
class EventHandler:
    """`handle(uow, event)` runs inside a transaction together with the handler's idempotency marker,
    so its database effects happen exactly once per event even though delivery is at-least-once.
    Effects outside the database (HTTP, SMTP) are queued as documents in that transaction and sent by
    their own workers. The event is the stored outbox document (see schemas.events.EventEnvelope)."""

    name: str
    event_types: frozenset[str]
    handle: HandleFn


@dataclass(frozen=True)
class On(Generic[P]):
    """One reaction: the payload model it wants, and what it does with the parsed payload and the event."""

    payload: type[P]
    react: Callable[[UnitOfWork, P, Doc], Awaitable[None]]

    @property
    def event_type(self) -> str:
        return event_name_of(self.payload)

    async def __call__(self, uow: UnitOfWork, event: Doc) -> None:
        await self.react(uow, self.payload.model_validate(event.get("payload") or {}), event)


def on(payload: type[P], react: Callable[[UnitOfWork, P, Doc], Awaitable[None]]) -> On[P]:
    return On(payload, react)


def reacting(name: str, *reactions: On[Any]) -> EventHandler:
    """A handler made of typed reactions, one per event type."""
    by_type = {reaction.event_type: reaction for reaction in reactions}
    if len(by_type) != len(reactions):
        raise RuntimeError(f"handler {name} reacts twice to one event type")

    async def handle(uow: UnitOfWork, event: Doc) -> None:
        reaction = by_type.get(event["type"])
        if reaction is not None:
            await reaction(uow, event)

    return EventHandler(name, frozenset(by_type), handle)
