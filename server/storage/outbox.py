"""The outbox (`events`), its sequencing, and the dispatcher's bookkeeping: per-handler cursors,
idempotency markers and deferred (failed or queued) events.

Sequencing is insert-only apart from one small delete per transaction, because updates are what the
embedded server is slow at. A transaction inserts its events into `events` (never modified afterwards)
and one `outbox_pending` marker listing them in emission order. The sequencer turns markers, oldest
first, into `event_log` positions `{_id: event_id, seq, type, subject}`, deletes the markers and moves
`sequence_state` in one transaction. `event_log` is the order everything reads. Its unique `seq` and
`_id` refuse a second sequencer's overlapping numbers, and seq is dense (gap-free), which lets readers
ask for bounded windows `seq in (after, after + n]`: SecantusDB reads an open-ended range to its end
before applying a limit, and scans the whole `_id` index for any `_id` range."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, IndexModel, ReturnDocument, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from schemas.events import EventEnvelope
from server.db import Database, Doc

MARKER_ORDER = [("at", ASCENDING), ("_id", ASCENDING)]
# SecantusDB matches `$in` by a linear scan of the list for every candidate, so long lists cost
# quadratically: `$in` queries go out in slices of this size.
IN_SLICE = 100

INDEXES: dict[str, list[IndexModel]] = {
    # Events are written once and read by _id only: no secondary index to maintain.
    "events": [],
    "outbox_pending": [IndexModel(MARKER_ORDER)],
    "event_log": [
        IndexModel("seq", unique=True),
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


class SequencingConflict(Exception):
    """Another sequencer consumed some of the markers this one read: the transaction must abort."""


def subject_key(event: Doc) -> str:
    subject = event.get("subject") or {}
    return f"{subject.get('type', '?')}:{subject.get('id', '?')}"


def marker_id(handler: str, event_id: str) -> str:
    return f"{handler}:{event_id}"


def slices(items: list[Any], size: int = IN_SLICE) -> list[list[Any]]:
    return [items[start:start + size] for start in range(0, len(items), size)]


# --- writing (UnitOfWork.flush, inside the state change's transaction) ----------------------------


def pending_marker(events: list[Doc], at: datetime, by: str) -> Doc:
    """The one marker a transaction writes for all its events, in emission order. `at` is the time of
    the flush, just before the commit; the ObjectId orders markers flushed within one millisecond by
    one process in flush order. `by` is the committing instance: it wakes its own sequencer in-process,
    so its change stream leaves out its own markers (server.jobs.wakeups)."""
    return {
        "_id": ObjectId(),
        "at": at,
        "by": by,
        "events": [{"id": e["_id"], "type": e["type"], "subject": subject_key(e)} for e in events],
    }


async def write_events(db: Database, events: list[Doc], at: datetime, session: AsyncClientSession,
                       by: str) -> None:
    await db.events.insert_many(events, session=session)
    await db.outbox_pending.insert_one(pending_marker(events, at, by), session=session)


# --- sequencing ----------------------------------------------------------------------------------


async def pending_markers(db: Database, limit: int) -> list[Doc]:
    """The oldest `limit` markers, in commit-discovery order (the sort reads every pending marker, so
    callers take many at once and log them in several transactions)."""
    return await db.outbox_pending.find({}).sort(MARKER_ORDER).limit(limit).to_list()


def transaction_groups(markers: list[Doc], max_events: int, field: str = "events") -> list[list[Doc]]:
    """Consecutive markers grouped into about `max_events` items each (a marker is never split)."""
    groups: list[list[Doc]] = []
    count = max_events
    for marker in markers:
        size = len(marker[field])
        if count + size > max_events and (not groups or groups[-1]):
            groups.append([])
            count = 0
        groups[-1].append(marker)
        count += size
    return groups


async def last_event_seq(db: Database, session: AsyncClientSession | None = None) -> int:
    """The highest seq handed out. Kept in one document because SecantusDB walks the whole index for a
    descending scan; the document also makes two racing sequencers conflict in their transactions."""
    state = await db.sequence_state.find_one({"_id": "events"}, session=session)
    return int(state["last_seq"]) if state is not None else 0


async def log_markers(db: Database, markers: list[Doc], session: AsyncClientSession,
                      known_last: int | None = None) -> int:
    """Give the markers' events the next positions, in order, and consume the markers; returns how many.

    `known_last` is the last seq as the caller believes it (a sequencer remembers what it committed, which
    saves reading it): the state moves only from exactly that value, so a belief made stale by another
    sequencer aborts the transaction like any other overlap. Raises SequencingConflict (so the
    transaction aborts) when a marker was consumed meanwhile or the last seq moved."""
    last = await last_event_seq(db, session) if known_last is None else known_last
    first = last + 1
    entries = [{"_id": e["id"], "seq": first + i, "type": e["type"], "subject": e["subject"]}
               for i, e in enumerate(e for m in markers for e in m["events"])]
    if not entries:
        return 0
    await db.event_log.insert_many(entries, ordered=True, session=session)
    await delete_markers(db.outbox_pending, markers, session)
    moved = await db.sequence_state.update_one(
        {"_id": "events", "last_seq": last}, {"$set": {"last_seq": last + len(entries)}},
        upsert=last == 0, session=session)
    if not moved.matched_count and moved.upserted_id is None:
        raise SequencingConflict(f"the last seq is no longer {last}")
    return len(entries)


async def delete_markers(collection: Any, markers: list[Doc], session: AsyncClientSession) -> None:
    deleted = 0
    for ids in slices([m["_id"] for m in markers]):
        result = await collection.delete_many({"_id": {"$in": ids}}, session=session)
        deleted += result.deleted_count
    if deleted != len(markers):
        raise SequencingConflict(f"{len(markers) - deleted} markers were consumed by another sequencer")


async def pending_count(db: Database) -> int:
    """Events committed but not sequenced yet."""
    rows = await (await db.outbox_pending.aggregate(
        [{"$group": {"_id": None, "n": {"$sum": {"$size": "$events"}}}}])).to_list()
    return int(rows[0]["n"]) if rows else 0


async def anything_pending(db: Database) -> bool:
    return await db.outbox_pending.find_one({}, {"_id": 1}) is not None


# --- reading in seq order ------------------------------------------------------------------------


async def log_after(db: Database, after_seq: int, limit: int, types: list[str] | None = None) -> list[Doc]:
    """Up to `limit` positions after `after_seq`, in seq order.

    Reads bounded windows of seq (never with a hint: SecantusDB then walks the whole index). As seq is
    dense, the first window holds everything when no type is asked for; with types, windows double
    until enough are found or the end of the log is reached."""
    last = await last_event_seq(db)
    found: list[Doc] = []
    low, span = after_seq, limit
    while low < last and len(found) < limit:
        high = min(last, low + span)
        query: dict[str, Any] = {"seq": {"$gt": low, "$lte": high}}
        if types and len(types) == 1:
            query["type"] = types[0]  # the (type, seq) index
        rows = await db.event_log.find(query).sort("seq", ASCENDING).limit(limit - len(found)).to_list()
        if types and len(types) > 1:
            # `type: {$in}` makes SecantusDB's planner scan the collection: filter the bounded window here.
            rows = [row for row in rows if row["type"] in types]
        found += rows
        low, span = high, span * 2
    return found


async def log_window(db: Database, after_seq: int, last_seq: int, limit: int) -> list[Doc]:
    """The positions seq in (after_seq, min(last_seq, after_seq + limit)], in seq order: one bounded
    window (seq is dense), for a caller that has read `last_seq` already."""
    high = min(last_seq, after_seq + limit)
    if high <= after_seq:
        return []
    return await db.event_log.find({"seq": {"$gt": after_seq, "$lte": high}}).sort("seq", ASCENDING).to_list()


async def events_for(db: Database, positions: list[Doc]) -> list[Doc]:
    """The stored events at these positions, in the same order, each carrying its `seq`."""
    found = await events_by_ids(db, [p["_id"] for p in positions])
    return [{**found[p["_id"]], "seq": p["seq"]} for p in positions if p["_id"] in found]


async def events_after(db: Database, after_seq: int, limit: int, types: list[str] | None = None) -> list[Doc]:
    return await events_for(db, await log_after(db, after_seq, limit, types))


async def events_by_ids(db: Database, event_ids: list[str]) -> dict[str, Doc]:
    found: dict[str, Doc] = {}
    for ids in slices(event_ids):
        found.update({d["_id"]: d for d in await db.events.find({"_id": {"$in": ids}}).to_list()})
    return found


async def seq_of(db: Database, event_id: str) -> int | None:
    position = await db.event_log.find_one({"_id": event_id}, {"seq": 1})
    return int(position["seq"]) if position else None


# --- handler cursors -----------------------------------------------------------------------------


async def cursor_of(db: Database, handler: str) -> int:
    doc = await db.handler_cursors.find_one({"_id": handler})
    return int(doc["last_seq"]) if doc else 0


async def cursors_of(db: Database, handlers: list[str]) -> dict[str, int]:
    """Several handlers' cursors in one query (a handler never run has none: 0)."""
    found = db.handler_cursors.find({"_id": {"$in": handlers}}, {"last_seq": 1})
    return {doc["_id"]: int(doc["last_seq"]) async for doc in found}


async def advance_cursors(db: Database, seqs: dict[str, int], now: datetime) -> None:
    """Move several handlers' cursors in one round trip ($max, as advance_cursor)."""
    if seqs:
        await db.handler_cursors.bulk_write([
            UpdateOne({"_id": handler}, {"$max": {"last_seq": seq}, "$set": {"updated_at": now}}, upsert=True)
            for handler, seq in seqs.items()
        ], ordered=False)


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


# What an admin's list of failures shows (schemas.backbone.HandlerFailurePublic).
FAILURE_FIELDS = dict.fromkeys(("handler", "event_id", "event_type", "subject", "seq", "attempts", "status",
                                "next_attempt_at", "last_error", "first_failed_at", "updated_at"), 1)


async def failures_page(db: Database, filters: dict[str, Any], limit: int,
                        after_seq: int | None) -> list[Doc]:
    query = dict(filters)
    if after_seq is not None:
        query["seq"] = {"$gt": after_seq}
    return await db.handler_failures.find(query, FAILURE_FIELDS).sort("seq", ASCENDING).limit(limit + 1).to_list()


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
