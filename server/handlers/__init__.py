"""Event handlers: each module exposes `HANDLERS: list[EventHandler]`; the dispatcher runs them all.
The list is explicit imports, so a renamed or missing module fails at start-up instead of silently
dropping an area's reactions."""

from __future__ import annotations

from server.handlers import aggregates, notifications, photos, rectifications, webhooks
from server.handlers.base import EventHandler

# Every module that reacts to events.
HANDLER_MODULES = (webhooks, rectifications, notifications, photos, aggregates)


def all_handlers() -> list[EventHandler]:
    handlers = [handler for module in HANDLER_MODULES for handler in module.HANDLERS]
    names = [h.name for h in handlers]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise RuntimeError(f"event handler names must be unique: {sorted(duplicates)}")
    return handlers
