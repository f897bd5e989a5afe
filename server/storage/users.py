"""Users, sessions (refresh-token families) and login throttling."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
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
    "sessions": [IndexModel("user_id"), IndexModel("expires_at", expireAfterSeconds=0)],
    "refresh_tokens": [IndexModel("session_id"), IndexModel("expires_at", expireAfterSeconds=0)],
    "login_failures": [IndexModel("expires_at", expireAfterSeconds=0)],
}


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
    docs = await db.users.find(combine(filters, after_filter(sort, cursor))).sort(sort).limit(limit + 1).to_list()
    return page_of(docs, sort, limit)


async def with_role(db: Database, role: str, extra: dict[str, Any] | None = None) -> list[Doc]:
    return await db.users.find({"role": role, "active": {"$ne": False}, **(extra or {})}).sort("_id", 1).to_list()


# --- sessions and refresh tokens -----------------------------------------------------------------


async def open_session(db: Database, session_id: str, user_id: str, now: datetime, ttl_s: int) -> None:
    await db.sessions.insert_one(
        {"_id": session_id, "user_id": user_id, "created_at": now, "expires_at": now + timedelta(seconds=ttl_s)}
    )


async def store_refresh_token(db: Database, digest: str, session_id: str, user_id: str, now: datetime,
                              ttl_s: int) -> None:
    await db.refresh_tokens.insert_one(
        {"_id": digest, "session_id": session_id, "user_id": user_id, "issued_at": now,
         "expires_at": now + timedelta(seconds=ttl_s), "used_at": None}
    )


async def use_refresh_token(db: Database, digest: str, now: datetime) -> tuple[str, Doc | None]:
    """Mark a refresh token used. Returns ("ok"|"reused"|"unknown", token doc)."""
    # update_one, not find_one_and_update: on SecantusDB the latter scans the collection even on _id, and
    # this one grows with every login. The conditional update still lets exactly one caller use a token.
    result = await db.refresh_tokens.update_one(
        {"_id": digest, "used_at": None, "expires_at": {"$gt": now}}, {"$set": {"used_at": now}}
    )
    existing = await db.refresh_tokens.find_one({"_id": digest})
    if result.modified_count == 1 and existing is not None:
        return "ok", existing
    if existing is None:
        return "unknown", None
    if existing.get("used_at") is not None:
        return "reused", existing
    return "unknown", existing  # expired


async def revoke_session(db: Database, session_id: str, now: datetime, reason: str, access_ttl_s: int) -> None:
    """End a login: its refresh tokens stop working, and its access tokens at the next request."""
    session = await db.sessions.find_one_and_update(
        {"_id": session_id, "revoked_at": None}, {"$set": {"revoked_at": now, "revoked_reason": reason}}
    )
    if session is None:
        return
    # Access tokens are checked against this list; entries are dropped once such tokens have expired anyway.
    await db.users.update_one({"_id": session["user_id"]},
                              {"$pull": {"revoked_sessions": {"until": {"$lte": now}}}})
    await db.users.update_one(
        {"_id": session["user_id"]},
        {"$push": {"revoked_sessions": {"sid": session_id, "until": now + timedelta(seconds=access_ttl_s)}}},
    )


async def session_active(db: Database, session_id: str) -> bool:
    doc = await db.sessions.find_one({"_id": session_id})
    return doc is not None and not doc.get("revoked_at")


# --- login throttling ----------------------------------------------------------------------------


async def throttle_state(db: Database, keys: list[str], now: datetime) -> datetime | None:
    """The latest lock expiry among `keys` still in force, if any."""
    docs = await db.login_failures.find({"_id": {"$in": keys}, "locked_until": {"$gt": now}}).to_list()
    return max((d["locked_until"] for d in docs), default=None)


async def record_failure(db: Database, key: str, now: datetime, window_s: int, max_failures: int) -> None:
    window = timedelta(seconds=window_s)
    doc = await db.login_failures.find_one_and_update(
        {"_id": key},
        [
            {"$set": {
                "count": {"$cond": [{"$gt": ["$expires_at", now]}, {"$add": [{"$ifNull": ["$count", 0]}, 1]}, 1]},
                "expires_at": {"$cond": [{"$gt": ["$expires_at", now]}, "$expires_at", now + window]},
            }}
        ],
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    if doc and doc.get("count", 0) >= max_failures:
        await db.login_failures.update_one(
            {"_id": key}, {"$set": {"locked_until": now + window, "expires_at": now + window}}
        )


async def clear_failures(db: Database, key: str) -> None:
    await db.login_failures.delete_one({"_id": key})


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
