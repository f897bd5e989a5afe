"""The outbox (`events`), its sequencing, and the dispatcher's bookkeeping: per-handler cursors,
idempotency markers and deferred (failed or queued) events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from schemas.events import EventEnvelope
from server.db import Database, Doc

# The pending query must stay on an index: SecantusDB's planner ignored a partial index for
# `seq: null`, so pending events carry an explicit `seq_pending: True` and are looked up by it.
PENDING_ORDER = [("occurred_at", ASCENDING), ("emit_index", ASCENDING), ("_id", ASCENDING)]

INDEXES: dict[str, list[IndexModel]] = {
    "events": [
        IndexModel([("seq_pending", ASCENDING), *PENDING_ORDER]),
        # Sparse: pending events have no seq yet. Unique: a second (stale) sequencer cannot reuse a number.
        IndexModel("seq", unique=True, sparse=True),
        IndexModel([("type", ASCENDING), ("seq", ASCENDING)]),
    ],
    "handler_failures": [
        IndexModel([("handler", ASCENDING), ("status", ASCENDING), ("seq", ASCENDING)]),
        IndexModel([("status", ASCENDING), ("seq", ASCENDING)]),
    ],
}

STATUS_RETRYING = "retrying"
STATUS_QUEUED = "queued"  # waiting behind an earlier failed event of the same subject
STATUS_PARKED = "parked"
OPEN_STATUSES = (STATUS_RETRYING, STATUS_QUEUED)


def subject_key(event: Doc) -> str:
    subject = event.get("subject") or {}
    return f"{subject.get('type', '?')}:{subject.get('id', '?')}"


def marker_id(handler: str, event_id: str) -> str:
    return f"{handler}:{event_id}"


# --- sequencing ----------------------------------------------------------------------------------


async def pending_events(db: Database, limit: int) -> list[Doc]:
    return await db.events.find({"seq_pending": True}, {"_id": 1}).sort(PENDING_ORDER).limit(limit).to_list()


async def last_event_seq(db: Database, session: AsyncClientSession | None = None) -> int:
    """The highest seq handed out. Kept in one document because SecantusDB walks the whole index for a
    descending `seq` scan; the document also makes two racing sequencers conflict in their transactions."""
    state = await db.sequence_state.find_one({"_id": "events"}, session=session)
    if state is not None:
        return int(state["last_seq"])
    doc = await db.events.find_one({"seq": {"$gt": 0}}, {"seq": 1}, sort=[("seq", DESCENDING)],
                                   session=session)
    return int(doc["seq"]) if doc else 0


async def set_last_event_seq(db: Database, seq: int, session: AsyncClientSession) -> None:
    await db.sequence_state.update_one({"_id": "events"}, {"$set": {"last_seq": seq}}, upsert=True,
                                       session=session)


async def assign_event_seqs(db: Database, event_ids: list[str], first_seq: int,
                            session: AsyncClientSession) -> int:
    """Number the events in the given order; the filter skips any another sequencer already numbered."""
    ops = [
        UpdateOne({"_id": event_id, "seq_pending": True},
                  {"$set": {"seq": first_seq + i}, "$unset": {"seq_pending": ""}})
        for i, event_id in enumerate(event_ids)
    ]
    result = await db.events.bulk_write(ops, ordered=True, session=session)
    return result.modified_count


# --- reading in seq order ------------------------------------------------------------------------


async def events_after(db: Database, after_seq: int, limit: int, types: list[str] | None = None) -> list[Doc]:
    query: dict[str, Any] = {"seq": {"$gt": after_seq}}
    if types and len(types) == 1:
        query["type"] = types[0]  # equality uses the (type, seq) index
    elif types:
        # SecantusDB's planner picks a collection scan for `type: {$in}` with this sort; walk seq instead.
        query["type"] = {"$in": types}
        found = db.events.find(query).sort("seq", ASCENDING).hint([("seq", ASCENDING)])
        return await found.limit(limit).to_list()
    return await db.events.find(query).sort("seq", ASCENDING).limit(limit).to_list()


async def events_by_ids(db: Database, event_ids: list[str]) -> dict[str, Doc]:
    return {d["_id"]: d for d in await db.events.find({"_id": {"$in": event_ids}}).to_list()}


async def pending_count(db: Database) -> int:
    return await db.events.count_documents({"seq_pending": True})


# --- handler cursors -----------------------------------------------------------------------------


async def cursor_of(db: Database, handler: str) -> int:
    doc = await db.handler_cursors.find_one({"_id": handler})
    return int(doc["last_seq"]) if doc else 0


async def advance_cursor(db: Database, handler: str, seq: int, now: datetime) -> None:
    # $max: a slower instance whose lease lapsed must never move a cursor backwards.
    await db.handler_cursors.update_one(
        {"_id": handler}, {"$max": {"last_seq": seq}, "$set": {"updated_at": now}}, upsert=True
    )


# --- idempotency markers -------------------------------------------------------------------------


async def insert_markers(db: Database, handler: str, event_ids: list[str], now: datetime,
                         session: AsyncClientSession) -> None:
    """Raises DuplicateKeyError when any of the events was already handled."""
    docs = [{"_id": marker_id(handler, e), "handler": handler, "event_id": e, "at": now} for e in event_ids]
    await db.handled.insert_many(docs, ordered=True, session=session)


# --- deferred events (failures and the events queued behind them) ----------------------------------


async def open_deferrals(db: Database, handler: str) -> list[Doc]:
    return await db.handler_failures.find(
        {"handler": handler, "status": {"$in": list(OPEN_STATUSES)}}
    ).sort("seq", ASCENDING).to_list()


async def defer(db: Database, handler: str, event: Doc, status: str, now: datetime,
                error: str | None = None, next_attempt_at: datetime | None = None) -> None:
    """Record an event this handler must come back to; re-recording the same event is a no-op."""
    await db.handler_failures.update_one(
        {"_id": marker_id(handler, event["_id"])},
        {"$setOnInsert": {
            "handler": handler,
            "event_id": event["_id"],
            "event_type": event["type"],
            "subject": subject_key(event),
            "seq": event["seq"],
            "attempts": 1 if status == STATUS_RETRYING else 0,
            "status": status,
            "next_attempt_at": next_attempt_at or now,
            "last_error": error,
            "first_failed_at": now if error else None,
            "updated_at": now,
        }},
        upsert=True,
    )


async def record_attempt_failure(db: Database, deferral: Doc, *, status: str, error: str,
                                 next_attempt_at: datetime, now: datetime) -> None:
    changes: dict[str, Any] = {"attempts": int(deferral.get("attempts", 0)) + 1, "status": status,
                               "last_error": error, "next_attempt_at": next_attempt_at, "updated_at": now}
    if not deferral.get("first_failed_at"):
        changes["first_failed_at"] = now
    await db.handler_failures.update_one({"_id": deferral["_id"]}, {"$set": changes})


async def resolve_deferral(db: Database, deferral_id: str) -> None:
    await db.handler_failures.delete_one({"_id": deferral_id})


async def failures_page(db: Database, filters: dict[str, Any], limit: int,
                        after_seq: int | None) -> list[Doc]:
    query = dict(filters)
    if after_seq is not None:
        query["seq"] = {"$gt": after_seq}
    return await db.handler_failures.find(query).sort("seq", ASCENDING).limit(limit + 1).to_list()


async def retry_parked(db: Database, deferral_id: str, now: datetime, by: str | None,
                       session: AsyncClientSession | None = None) -> Doc | None:
    """Put a parked failure back in line with a fresh attempt budget."""
    return await db.handler_failures.find_one_and_update(
        {"_id": deferral_id, "status": STATUS_PARKED},
        {"$set": {"status": STATUS_RETRYING, "attempts": 0, "next_attempt_at": now, "retried_by": by,
                  "retried_at": now, "updated_at": now}},
        return_document=ReturnDocument.AFTER, session=session,
    )


# --- serving -------------------------------------------------------------------------------------


def envelope(doc: Doc) -> EventEnvelope:
    """The public shape of a stored event (feed items and webhook bodies)."""
    return EventEnvelope.model_validate({**doc, "id": doc["_id"]})
