"""One-off markers (demo seeded, ...), leases for singleton jobs."""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo import IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from server.db import Database

INDEXES: dict[str, list[IndexModel]] = {"leases": [IndexModel("until")]}


async def claim_marker(db: Database, marker: str, now: datetime) -> bool:
    """True for exactly one caller across all processes."""
    try:
        await db.meta.insert_one({"_id": marker, "at": now})
    except DuplicateKeyError:
        return False
    return True


async def acquire_lease(db: Database, name: str, owner: str, now: datetime, ttl: timedelta) -> bool:
    """Hold `name` until now+ttl if it is free, expired, or already ours (renewal)."""
    try:
        doc = await db.leases.find_one_and_update(
            {"_id": name, "$or": [{"until": {"$lte": now}}, {"owner": owner}]},
            {"$set": {"owner": owner, "until": now + ttl}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
    except DuplicateKeyError:
        # Another owner holds an unexpired lease: the upsert collided with its document.
        return False
    return doc is not None and doc.get("owner") == owner


async def release_lease(db: Database, name: str, owner: str) -> None:
    await db.leases.delete_one({"_id": name, "owner": owner})
