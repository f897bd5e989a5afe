"""Indexes declared next to the queries that need them, collected at start-up."""

from __future__ import annotations

import importlib

from pymongo import IndexModel

# Storage modules that declare `INDEXES: dict[str, list[IndexModel]]`.
STORAGE_MODULES = [
    "server.storage.users",
    "server.storage.auth",
    "server.storage.org",
    "server.storage.outbox",
    "server.storage.trail",
    "server.storage.meta",
    "server.storage.checklists",
    "server.storage.programs",
    "server.storage.audits",
    "server.storage.photos",
    "server.storage.rectifications",
    "server.storage.notifications",
    "server.storage.webhooks",
    "server.storage.reports",
]


def collect() -> dict[str, list[IndexModel]]:
    merged: dict[str, list[IndexModel]] = {}
    for name in STORAGE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        for collection, models in getattr(module, "INDEXES", {}).items():
            merged.setdefault(collection, []).extend(models)
    return merged
