"""Checklists and their immutable versions.

`checklists {_id: key, key, current_version, title, channel, default_language, languages, updated_at}`
points at the current version; `checklist_versions {_id: "<key>@<version>", key, version, content_hash,
definition, published_at, published_by}` holds every version ever published and is never updated.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession

from schemas.checklist import LANGUAGES, Checklist
from server.db import Database, Doc

INDEXES: dict[str, list[IndexModel]] = {
    # Two publishers racing for the same next version: the second insert fails and retries.
    "checklist_versions": [IndexModel([("key", ASCENDING), ("version", ASCENDING)], unique=True)],
}

# Versions never change once written, so a parsed version can be kept for the life of the process.
# Keyed by the database object so test databases (and the bench's) never share entries.
_parsed: weakref.WeakKeyDictionary[Database, dict[tuple[str, int], Checklist]] = weakref.WeakKeyDictionary()


def canonical_definition(checklist: Checklist) -> dict[str, Any]:
    """The stored form of a definition (defaults filled in, aliases such as zh-CN kept)."""
    return checklist.model_dump(mode="json", by_alias=True)


def content_hash(checklist: Checklist) -> str:
    """sha256 of the canonical JSON (sorted keys): equal definitions hash equal however written."""
    canonical = json.dumps(canonical_definition(checklist), sort_keys=True, ensure_ascii=False,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def version_id(key: str, version: int) -> str:
    return f"{key}@{version}"


def _cache(db: Database) -> dict[tuple[str, int], Checklist]:
    found = _parsed.get(db)
    if found is None:
        found = _parsed[db] = {}
    return found


async def get_version(db: Database, key: str, version: int) -> Checklist | None:
    """One published version, parsed (cached in-process: versions are immutable)."""
    cache = _cache(db)
    found = cache.get((key, version))
    if found is not None:
        return found
    doc = await db.checklist_versions.find_one({"_id": version_id(key, version)}, {"definition": 1})
    if doc is None:
        return None
    checklist = Checklist.model_validate(doc["definition"])
    cache[(key, version)] = checklist
    return checklist


async def current_version(db: Database, key: str, session: AsyncClientSession | None = None) -> int | None:
    """The number of the current version of a checklist, None when it was never published."""
    doc = await db.checklists.find_one({"_id": key}, {"current_version": 1}, session=session)
    return int(doc["current_version"]) if doc else None


async def get_current(db: Database, key: str) -> tuple[Checklist, int] | None:
    """The current version of a checklist and its number (what a new audit pins)."""
    version = await current_version(db, key)
    if version is None:
        return None
    checklist = await get_version(db, key, version)
    return (checklist, version) if checklist is not None else None


async def version_record(db: Database, key: str, version: int,
                         session: AsyncClientSession | None = None) -> Doc | None:
    """A version's metadata (hash, when and by whom), without the definition."""
    return await db.checklist_versions.find_one({"_id": version_id(key, version)}, {"definition": 0},
                                                session=session)


async def latest_version_number(db: Database, key: str, session: AsyncClientSession | None = None) -> int:
    """The highest version number written for a key (0 when none); the next one is this plus one."""
    doc = await db.checklist_versions.find_one({"key": key}, {"version": 1}, sort=[("version", DESCENDING)],
                                               session=session)
    return int(doc["version"]) if doc else 0


async def list_checklists(db: Database) -> list[Doc]:
    """Every published checklist's pointer document, by key."""
    return await db.checklists.find({}).sort("_id", ASCENDING).to_list()


async def list_versions(db: Database, key: str) -> list[Doc]:
    """Every version of one checklist, oldest first, without the definitions."""
    cursor = db.checklist_versions.find({"key": key}, {"definition": 0}).sort("version", ASCENDING)
    return await cursor.to_list()


async def insert_version(db: Database, checklist: Checklist, version: int, digest: str,
                         published_at: datetime, published_by: str | None,
                         session: AsyncClientSession) -> None:
    """Write a new immutable version; raises DuplicateKeyError when that number is already taken."""
    await db.checklist_versions.insert_one(
        {
            "_id": version_id(checklist.key, version),
            "key": checklist.key,
            "version": version,
            "content_hash": digest,
            "definition": canonical_definition(checklist),
            "published_at": published_at,
            "published_by": published_by,
        },
        session=session,
    )


async def point_to(db: Database, checklist: Checklist, version: int, now: datetime,
                   session: AsyncClientSession) -> None:
    """Make `version` the current one (the pointer only ever moves forward)."""
    await db.checklists.update_one(
        {"_id": checklist.key},
        {
            "$set": {
                "key": checklist.key,
                "current_version": version,
                "title": checklist.title.model_dump(by_alias=True),
                "channel": checklist.channel,
                "default_language": checklist.default_language,
                "languages": list(LANGUAGES),
                "updated_at": now,
            }
        },
        upsert=True,
        session=session,
    )


async def pointer(db: Database, key: str, session: AsyncClientSession | None = None) -> Doc | None:
    """A checklist's pointer document (current version, retired or not)."""
    return await db.checklists.find_one({"_id": key}, session=session)


async def set_retired(db: Database, key: str, retired: dict[str, Any] | None, session: AsyncClientSession) -> None:
    """Retire (`retired` holds when, why and by whom) or restore (None) a checklist."""
    update = {"$set": {"retired": retired}} if retired else {"$unset": {"retired": ""}}
    await db.checklists.update_one({"_id": key}, update, session=session)
