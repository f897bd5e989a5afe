"""In-app notifications (per-user ordered inbox), channel preferences, the email outbox, digest markers."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession

from server.db import Database, Doc
from server.storage.paging import after_filter, combine, page_of

INDEXES: dict[str, list[IndexModel]] = {
    "notifications": [
        IndexModel([("user_id", ASCENDING), ("seq", ASCENDING)], unique=True),
        IndexModel([("user_id", ASCENDING), ("read_at", ASCENDING), ("seq", ASCENDING)]),
    ],
    "email_outbox": [IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)])],
}
CLAIM_TRIES = 5  # another worker took the candidate: try the next one a few times
DEFAULT_PREFERENCES: dict[str, bool] = {"in_app": True, "email": True, "webhook": False}


# What an inbox row is made of (public_notification), and the seq that pages it.
PUBLIC_FIELDS = {f: 1 for f in ("seq", "kind", "title", "body", "data", "created_at", "read_at")}


def public_notification(doc: Doc) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "seq": doc["seq"],
        "kind": doc["kind"],
        "title": doc["title"],
        "body": doc["body"],
        "data": doc.get("data") or {},
        "created_at": doc["created_at"],
        "read_at": doc.get("read_at"),
    }


async def insert_notification(
    db: Database,
    session: AsyncClientSession,
    *,
    notification_id: str,
    user_id: str,
    kind: str,
    title: str,
    body: str,
    data: dict[str, Any],
    now: datetime,
) -> Doc:
    """Append to a user's inbox. The per-user counter is written in the same transaction, so concurrent
    writers conflict and retry: `seq` order is commit order, which makes it a safe stream cursor."""
    # update_one + find_one rather than find_one_and_update, which SecantusDB runs as a collection scan.
    await db.notification_counters.update_one({"_id": user_id}, {"$inc": {"seq": 1}}, upsert=True,
                                              session=session)
    counter = await db.notification_counters.find_one({"_id": user_id}, session=session)
    seq = int(counter["seq"]) if counter else 1
    doc = {
        "_id": notification_id,
        "user_id": user_id,
        "seq": seq,
        "kind": kind,
        "title": title,
        "body": body,
        "data": data,
        "created_at": now,
        "read_at": None,
    }
    await db.notifications.insert_one(doc, session=session)
    return doc


async def page(
    db: Database, user_id: str, unread: bool | None, limit: int, cursor: str | None
) -> tuple[list[Doc], str | None]:
    """Newest first."""
    sort = [("seq", DESCENDING)]
    scope: dict[str, Any] = {"user_id": user_id}
    if unread is True:
        scope["read_at"] = None
    elif unread is False:
        scope["read_at"] = {"$ne": None}
    docs = (
        await db.notifications.find(combine(scope, after_filter(sort, cursor)), PUBLIC_FIELDS)
        .sort(sort)
        .limit(limit + 1)
        .to_list()
    )
    return page_of(docs, sort, limit)


async def after_seq(db: Database, user_id: str, seq: int, limit: int = 100) -> list[Doc]:
    return (
        await db.notifications.find({"user_id": user_id, "seq": {"$gt": seq}}, PUBLIC_FIELDS)
        .sort("seq", 1)
        .limit(limit)
        .to_list()
    )


async def latest_seq(db: Database, user_id: str) -> int:
    counter = await db.notification_counters.find_one({"_id": user_id})
    return int(counter["seq"]) if counter else 0


async def unread_count(db: Database, user_id: str) -> int:
    return await db.notifications.count_documents({"user_id": user_id, "read_at": None})


async def mark_read(db: Database, user_id: str, notification_id: str, now: datetime) -> Doc | None:
    """Marks the caller's own notification read (keeps the first read time); None if not theirs."""
    await db.notifications.update_one(
        {"_id": notification_id, "user_id": user_id, "read_at": None}, {"$set": {"read_at": now}}
    )
    return await db.notifications.find_one({"_id": notification_id, "user_id": user_id})


async def preferences(db: Database, user_ids: list[str]) -> dict[str, dict[str, bool]]:
    found = {
        d["_id"]: d for d in await db.notification_preferences.find(
            {"_id": {"$in": user_ids}}, dict.fromkeys(DEFAULT_PREFERENCES, 1)).to_list()
    }
    return {
        uid: {k: bool(found.get(uid, {}).get(k, v)) for k, v in DEFAULT_PREFERENCES.items()}
        for uid in user_ids
    }


async def save_preferences(db: Database, user_id: str, prefs: dict[str, bool], now: datetime) -> None:
    await db.notification_preferences.update_one(
        {"_id": user_id}, {"$set": {**prefs, "updated_at": now}}, upsert=True
    )


# --- email outbox ---------------------------------------------------------------------------------------


async def queue_email(
    db: Database,
    session: AsyncClientSession,
    *,
    to: str,
    subject: str,
    text: str,
    html: str,
    language: str,
    user_id: str,
    notification_id: str | None,
    now: datetime,
) -> None:
    await db.email_outbox.insert_one(
        {
            "_id": str(uuid.uuid4()),
            "to": to,
            "subject": subject,
            "text": text,
            "html": html,
            "language": language,
            "user_id": user_id,
            "notification_id": notification_id,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "last_error": None,
        },
        session=session,
    )


async def claim_email(db: Database, now: datetime, lease: timedelta) -> Doc | None:
    """Take one due email; a claim left by a crashed worker is taken again once its lease runs out.
    Read a candidate by the index, then take it with a guarded update (one winner among workers)."""
    for _ in range(CLAIM_TRIES):
        candidate = await db.email_outbox.find_one(
            {"status": {"$in": ["pending", "sending"]}, "next_attempt_at": {"$lte": now}},
            sort=[("status", ASCENDING), ("next_attempt_at", ASCENDING)])
        if candidate is None:
            return None
        taken = await db.email_outbox.update_one(
            {"_id": candidate["_id"], "status": candidate["status"],
             "next_attempt_at": candidate["next_attempt_at"]},
            {"$set": {"status": "sending", "next_attempt_at": now + lease}, "$inc": {"attempts": 1}})
        if taken.modified_count == 1:
            return await db.email_outbox.find_one({"_id": candidate["_id"]})
    return None


async def email_sent(db: Database, email_id: str, now: datetime) -> None:
    await db.email_outbox.update_one(
        {"_id": email_id}, {"$set": {"status": "sent", "sent_at": now, "last_error": None}}
    )


async def email_failed(db: Database, email_id: str, error: str, retry_at: datetime | None) -> None:
    update: dict[str, Any]
    if retry_at is None:
        update = {"status": "failed", "last_error": error[:500]}
    else:
        update = {"status": "pending", "next_attempt_at": retry_at, "last_error": error[:500]}
    await db.email_outbox.update_one({"_id": email_id}, {"$set": update})


# --- digest markers -------------------------------------------------------------------------------------


async def digest_sent(db: Database, marker: str) -> bool:
    return await db.digest_markers.find_one({"_id": marker}, {"_id": 1}) is not None


async def claim_digest(
    db: Database, session: AsyncClientSession, marker: str, user_id: str, now: datetime
) -> None:
    """Inside the digest's transaction: a second writer of the same (user, local date) fails the commit."""
    await db.digest_markers.insert_one({"_id": marker, "user_id": user_id, "at": now}, session=session)
