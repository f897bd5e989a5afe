"""Queues one webhook delivery per matching active subscription for every event (sent by the
webhook delivery worker, never from inside the handler's transaction)."""

from __future__ import annotations

import weakref

from server.context import UnitOfWork
from server.db import Doc
from server.handlers.base import EventHandler
from server.storage import outbox, webhooks

# The active subscriptions as one transaction read them: the dispatcher hands a handler a whole batch of
# events in one transaction (a phone's audit: three), and each would otherwise read them again.
_read_in: weakref.WeakKeyDictionary[UnitOfWork, list[Doc]] = weakref.WeakKeyDictionary()


async def _active(uow: UnitOfWork) -> list[Doc]:
    found = _read_in.get(uow)
    if found is None:
        found = _read_in[uow] = await webhooks.all_active(uow.db, uow.session)
    return found


async def queue_deliveries(uow: UnitOfWork, event: Doc) -> None:
    subscriptions = [s for s in await _active(uow)
                     if event["type"] in s.get("event_types", ()) or "*" in s.get("event_types", ())]
    if not subscriptions:
        return
    # The body is fixed now so every retry sends (and signs) the same bytes.
    body = outbox.envelope(event).model_dump_json()
    for subscription in subscriptions:
        await webhooks.enqueue(uow.db, subscription["_id"], event, body, uow.now, uow.session)


HANDLERS = [EventHandler("webhooks", frozenset({"*"}), queue_deliveries)]
