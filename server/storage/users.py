"""Users. Their sessions, refresh tokens and login throttling are in server.storage.auth."""

from __future__ import annotations

import re
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession

from server.db import Database, Doc
from server.storage.paging import after_filter, combine, page_of

INDEXES: dict[str, list[IndexModel]] = {
    "users": [
        IndexModel("username", unique=True),
        IndexModel([("role", ASCENDING), ("_id", ASCENDING)]),
        IndexModel([("branch_id", ASCENDING), ("_id", ASCENDING)]),
        IndexModel([("region_id", ASCENDING), ("_id", ASCENDING)]),
    ],
}


# What a listed user is made of (public_user): never the password hash or the login bookkeeping.
PUBLIC_FIELDS = {f: 1 for f in ("username", "display_name", "role", "region_id", "branch_id", "home_branch_id",
                                "language", "email", "active", "created_at")}


def public_user(doc: Doc) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "username": doc["username"],
        "display_name": doc.get("display_name") or doc["username"],
        "role": doc["role"],
        "region_id": doc.get("region_id"),
        "branch_id": doc.get("branch_id"),
        "home_branch_id": doc.get("home_branch_id"),
        "language": doc.get("language", "en"),
        "email": doc.get("email"),
        "active": doc.get("active", True),
        "created_at": doc["created_at"],
    }


async def by_username(db: Database, username: str) -> Doc | None:
    return await db.users.find_one({"username": username})


async def by_id(db: Database, user_id: str) -> Doc | None:
    return await db.users.find_one({"_id": user_id})


async def insert(db: Database, user: Doc, session: AsyncClientSession | None = None) -> None:
    await db.users.insert_one(user, session=session)


async def page(db: Database, filters: dict[str, Any], limit: int, cursor: str | None) -> tuple[list[Doc], str | None]:
    sort = [("_id", 1)]
    query = combine(filters, after_filter(sort, cursor))
    docs = await db.users.find(query, PUBLIC_FIELDS).sort(sort).limit(limit + 1).to_list()
    return page_of(docs, sort, limit)


async def with_role(db: Database, role: str, extra: dict[str, Any] | None = None) -> list[Doc]:
    """The active users of a role: who they are and where they work (a program's visit planning)."""
    query = {"role": role, "active": {"$ne": False}, **(extra or {})}
    return await db.users.find(query, PUBLIC_FIELDS).sort("_id", 1).to_list()


# --- administration --------------------------------------------------------------------------------


async def by_id_in(db: Database, user_id: str, session: AsyncClientSession) -> Doc | None:
    """A user read inside a transaction (the password hash left out)."""
    return await db.users.find_one({"_id": user_id}, {"password_hash": 0}, session=session)


async def set_fields(db: Database, user_id: str, changes: dict[str, Any], session: AsyncClientSession) -> None:
    await db.users.update_one({"_id": user_id}, {"$set": changes}, session=session)


async def other_active_admins(db: Database, user_id: str, session: AsyncClientSession) -> int:
    """How many active admins there are besides `user_id` (the last one must stay)."""
    return await db.users.count_documents(
        {"role": "admin", "active": {"$ne": False}, "_id": {"$ne": user_id}}, session=session)


def search_filter(text: str) -> list[dict[str, Any]]:
    """Users whose username, display name or e-mail contains `text`, in any case (the admin's search box).
    The users collection is small; an unanchored match scans it, which is fine at that size."""
    pattern = {"$regex": re.escape(text), "$options": "i"}
    return [{"username": pattern}, {"display_name": pattern}, {"email": pattern}]
