"""Webhook subscriptions and their deliveries (one document per subscription and event, with its log)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from server.db import Database, Doc
from server.storage.paging import after_filter, combine, page_of

LISTING_ORDER = [("created_at", DESCENDING), ("_id", DESCENDING)]
DELIVERY_LOG_KEEP = 50  # attempts kept per delivery; older ones roll off

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
CANCELLED = "cancelled"

INDEXES: dict[str, list[IndexModel]] = {
    "webhook_subscriptions": [
        IndexModel([("active", ASCENDING), ("event_types", ASCENDING)]),
        IndexModel(LISTING_ORDER),
    ],
    "webhook_deliveries": [
        IndexModel([("subscription_id", ASCENDING), ("event_id", ASCENDING)], unique=True),
        IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)]),
        IndexModel([("subscription_id", ASCENDING), *LISTING_ORDER]),
    ],
}


# --- subscriptions -------------------------------------------------------------------------------


def public_subscription(doc: Doc) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "url": doc["url"],
        "event_types": doc["event_types"],
        "description": doc.get("description"),
        "active": doc.get("active", True),
        "consecutive_failures": doc.get("consecutive_failures", 0),
        "created_at": doc["created_at"],
        "created_by": doc.get("created_by"),
        "disabled_at": doc.get("disabled_at"),
        "disabled_reason": doc.get("disabled_reason"),
    }


async def insert_subscription(db: Database, doc: Doc, session: AsyncClientSession | None = None) -> None:
    await db.webhook_subscriptions.insert_one(doc, session=session)


async def subscription(db: Database, subscription_id: str) -> Doc | None:
    return await db.webhook_subscriptions.find_one({"_id": subscription_id})


async def subscriptions_page(db: Database, limit: int, cursor: str | None) -> tuple[list[Doc], str | None]:
    query = after_filter(LISTING_ORDER, cursor)
    docs = await db.webhook_subscriptions.find(query).sort(LISTING_ORDER).limit(limit + 1).to_list()
    return page_of(docs, LISTING_ORDER, limit)


async def delete_subscription(db: Database, subscription_id: str, now: datetime,
                              session: AsyncClientSession) -> bool:
    """Remove a subscription and cancel what it still had to deliver (the delivery log stays)."""
    result = await db.webhook_subscriptions.delete_one({"_id": subscription_id}, session=session)
    if not result.deleted_count:
        return False
    await db.webhook_deliveries.update_many(
        {"subscription_id": subscription_id, "status": PENDING},
        {"$set": {"status": CANCELLED, "cancelled_at": now, "last_error": "subscription deleted"}},
        session=session,
    )
    return True


async def all_active(db: Database, session: AsyncClientSession | None = None) -> list[Doc]:
    """Every active subscription and the event types it wants (a handful: a handler reads them once per
    transaction, not once per event)."""
    return await db.webhook_subscriptions.find({"active": True}, {"event_types": 1}, session=session).to_list()


async def note_delivered(db: Database, subscription_id: str) -> None:
    await db.webhook_subscriptions.update_one({"_id": subscription_id}, {"$set": {"consecutive_failures": 0}})


async def note_failed(db: Database, subscription_id: str, error: str | None) -> Doc | None:
    """Count one more delivery given up on; returns the subscription after the count."""
    return await db.webhook_subscriptions.find_one_and_update(
        {"_id": subscription_id},
        {"$inc": {"consecutive_failures": 1}, "$set": {"last_error": error}},
        return_document=ReturnDocument.AFTER,
    )


async def disable(db: Database, subscription_id: str, now: datetime, reason: str,
                  session: AsyncClientSession) -> Doc | None:
    """Deactivate once (None when it already was) and cancel its pending deliveries."""
    doc = await db.webhook_subscriptions.find_one_and_update(
        {"_id": subscription_id, "active": True},
        {"$set": {"active": False, "disabled_at": now, "disabled_reason": reason}},
        return_document=ReturnDocument.AFTER, session=session,
    )
    if doc is not None:
        await db.webhook_deliveries.update_many(
            {"subscription_id": subscription_id, "status": PENDING},
            {"$set": {"status": CANCELLED, "cancelled_at": now, "last_error": "subscription disabled"}},
            session=session,
        )
    return doc


# --- deliveries ----------------------------------------------------------------------------------


def delivery_id(subscription_id: str, event_id: str) -> str:
    return f"{subscription_id}:{event_id}"


async def enqueue(db: Database, subscription_id: str, event: Doc, body: str, now: datetime,
                  session: AsyncClientSession) -> None:
    """One delivery per (subscription, event): re-enqueueing the same pair changes nothing."""
    await db.webhook_deliveries.update_one(
        {"_id": delivery_id(subscription_id, event["_id"])},
        {"$setOnInsert": {
            "subscription_id": subscription_id,
            "event_id": event["_id"],
            "event_type": event["type"],
            "body": body,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "log": [],
        }},
        upsert=True, session=session,
    )


# A worker that loses this many races for a delivery in a row lets the next pass try again.
CLAIM_TRIES = 5


async def anything_due(db: Database, now: datetime) -> bool:
    """Whether any delivery is due: a read by the (status, next_attempt_at) index, so a worker with nothing
    to do polls without writing (a claim is a write, and SecantusDB slows every write by each one it keeps)."""
    found = await db.webhook_deliveries.find_one({"status": PENDING, "next_attempt_at": {"$lte": now}}, {"_id": 1})
    return found is not None


async def claim_due(db: Database, now: datetime, owner: str, claim_for: timedelta) -> Doc | None:
    """Take the most overdue delivery. The claim pushes next_attempt_at out, so a worker that dies
    mid-attempt leaves a delivery that becomes due again when the claim runs out.

    A read by the (status, next_attempt_at) index, then an update guarded by the due time read (one winner
    among workers): findAndModify takes longer the more deliveries are stored, on both embedded servers."""
    for _ in range(CLAIM_TRIES):
        candidate = await db.webhook_deliveries.find_one(
            {"status": PENDING, "next_attempt_at": {"$lte": now}}, sort=[("next_attempt_at", ASCENDING)])
        if candidate is None:
            return None
        claim = {"next_attempt_at": now + claim_for, "claimed_by": owner, "claim": uuid.uuid4().hex}
        taken = await db.webhook_deliveries.update_one(
            {"_id": candidate["_id"], "status": PENDING, "next_attempt_at": candidate["next_attempt_at"]},
            {"$set": claim})
        if taken.modified_count == 1:
            return {**candidate, **claim}
    return None


async def record_attempt(db: Database, delivery: Doc, changes: dict[str, Any],
                         attempt: dict[str, Any]) -> bool:
    """Store an attempt's outcome if our claim still holds; False when another worker took over."""
    result = await db.webhook_deliveries.update_one(
        {"_id": delivery["_id"], "claim": delivery["claim"]},
        {"$set": changes, "$inc": {"attempts": 1}, "$unset": {"claim": "", "claimed_by": ""},
         "$push": {"log": {"$each": [attempt], "$slice": -DELIVERY_LOG_KEEP}}},
    )
    return result.modified_count == 1


async def cancel(db: Database, delivery: Doc, now: datetime, reason: str) -> None:
    await db.webhook_deliveries.update_one(
        {"_id": delivery["_id"], "claim": delivery["claim"]},
        {"$set": {"status": CANCELLED, "cancelled_at": now, "last_error": reason},
         "$unset": {"claim": "", "claimed_by": ""}},
    )


async def deliveries_page(db: Database, subscription_id: str, filters: dict[str, Any], limit: int,
                          cursor: str | None) -> tuple[list[Doc], str | None]:
    query = combine({"subscription_id": subscription_id}, filters, after_filter(LISTING_ORDER, cursor))
    docs = await db.webhook_deliveries.find(query, {"body": 0}).sort(LISTING_ORDER).limit(limit + 1).to_list()
    return page_of(docs, LISTING_ORDER, limit)


async def has_deliveries(db: Database, subscription_id: str) -> bool:
    return await db.webhook_deliveries.find_one({"subscription_id": subscription_id}, {"_id": 1}) is not None


def public_delivery(doc: Doc) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "subscription_id": doc["subscription_id"],
        "event_id": doc["event_id"],
        "event_type": doc["event_type"],
        "status": doc["status"],
        "attempts": doc.get("attempts", 0),
        "next_attempt_at": doc.get("next_attempt_at") if doc["status"] == PENDING else None,
        "created_at": doc["created_at"],
        "delivered_at": doc.get("delivered_at"),
        "last_status_code": doc.get("last_status_code"),
        "last_error": doc.get("last_error"),
        "log": doc.get("log", []),
    }


# --- administration --------------------------------------------------------------------------------


async def subscription_in(db: Database, subscription_id: str, session: AsyncClientSession) -> Doc | None:
    return await db.webhook_subscriptions.find_one({"_id": subscription_id}, session=session)


async def set_subscription_fields(db: Database, subscription_id: str, changes: dict[str, Any],
                                  session: AsyncClientSession, unset: list[str] | None = None) -> None:
    update: dict[str, Any] = {"$set": changes}
    if unset:
        update["$unset"] = {name: "" for name in unset}
    await db.webhook_subscriptions.update_one({"_id": subscription_id}, update, session=session)


async def cancel_pending(db: Database, subscription_id: str, now: datetime, reason: str,
                         session: AsyncClientSession) -> None:
    await db.webhook_deliveries.update_many(
        {"subscription_id": subscription_id, "status": PENDING},
        {"$set": {"status": CANCELLED, "cancelled_at": now, "last_error": reason}}, session=session)


async def delivery_in(db: Database, delivery_id: str, session: AsyncClientSession) -> Doc | None:
    return await db.webhook_deliveries.find_one({"_id": delivery_id}, {"body": 0}, session=session)


async def deliver_again(db: Database, delivery_id: str, now: datetime, session: AsyncClientSession) -> None:
    """Queue a finished delivery once more, now, with a fresh attempt budget (its log stays)."""
    await db.webhook_deliveries.update_one(
        {"_id": delivery_id},
        {"$set": {"status": PENDING, "attempts": 0, "next_attempt_at": now, "redelivered_at": now},
         "$unset": {"claim": "", "claimed_by": "", "cancelled_at": ""}},
        session=session)
