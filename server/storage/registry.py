"""Indexes declared next to the queries that need them, collected at start-up."""

from __future__ import annotations

from pymongo import IndexModel

from server.storage import (
    audits,
    auth,
    checklists,
    meta,
    notifications,
    org,
    outbox,
    photos,
    programs,
    rectifications,
    reports,
    trail,
    users,
    webhooks,
)

# Storage modules that declare `INDEXES: dict[str, list[IndexModel]]` (explicit imports: a renamed module
# fails at start-up instead of silently losing its indexes).
STORAGE_MODULES = (
    users,
    auth,
    org,
    outbox,
    trail,
    meta,
    checklists,
    programs,
    audits,
    photos,
    rectifications,
    notifications,
    webhooks,
    reports,
)


def collect() -> dict[str, list[IndexModel]]:
    merged: dict[str, list[IndexModel]] = {}
    for module in STORAGE_MODULES:
        for collection, models in getattr(module, "INDEXES", {}).items():
            merged.setdefault(collection, []).extend(models)
    return merged
