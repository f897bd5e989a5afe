"""Queues one webhook delivery per matching active subscription for every event (sent by the
webhook delivery worker, never from inside the handler's transaction)."""

from __future__ import annotations

from server.context import UnitOfWork
from server.db import Doc
from server.handlers.base import EventHandler
from server.storage import outbox, webhooks


async def queue_deliveries(uow: UnitOfWork, event: Doc) -> None:
    subscriptions = await webhooks.matching_active(uow.db, event["type"], uow.session)
    if not subscriptions:
        return
    # The body is fixed now so every retry sends (and signs) the same bytes.
    body = outbox.envelope(event).model_dump_json()
    for subscription in subscriptions:
        await webhooks.enqueue(uow.db, subscription["_id"], event, body, uow.now, uow.session)


HANDLERS = [EventHandler("webhooks", frozenset({"*"}), queue_deliveries)]
