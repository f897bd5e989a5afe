"""Event handlers: each module exposes `HANDLERS: list[EventHandler]`; the dispatcher runs them all."""

from __future__ import annotations

import importlib

from server.handlers.base import EventHandler

# Every module that reacts to events. A name whose module does not exist yet is skipped.
HANDLER_MODULES = [
    "server.handlers.webhooks",
    "server.handlers.rectifications",
    "server.handlers.notifications",
    "server.handlers.photos",
    "server.handlers.aggregates",
]


def all_handlers() -> list[EventHandler]:
    handlers: list[EventHandler] = []
    for name in HANDLER_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        handlers.extend(module.HANDLERS)
    names = [h.name for h in handlers]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise RuntimeError(f"event handler names must be unique: {sorted(duplicates)}")
    return handlers
