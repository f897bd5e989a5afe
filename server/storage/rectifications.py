"""Rectification documents: creation, guarded state changes, reminder claims and scoped listings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession

from server.db import Database, Doc
from server.domain.rectification_rules import ACTIVE
from server.storage.paging import after_filter, combine, page_of

INDEXES: dict[str, list[IndexModel]] = {
    "rectifications": [
        IndexModel("finding_id", unique=True),
        IndexModel("next_reminder_at"),  # the sweep: cost grows with due reminders only
        IndexModel([("branch_id", ASCENDING), ("due_at", ASCENDING), ("_id", ASCENDING)]),
        IndexModel([("region_id", ASCENDING), ("due_at", ASCENDING), ("_id", ASCENDING)]),
        IndexModel([("inspector_id", ASCENDING), ("due_at", ASCENDING), ("_id", ASCENDING)]),
        IndexModel([("due_at", ASCENDING), ("_id", ASCENDING)]),
        IndexModel([("status", ASCENDING), ("overdue", ASCENDING), ("due_at", ASCENDING)]),
        IndexModel("audit_id"),
    ],
}
# Guarded writes use update_one, not find_one_and_update: the embedded SecantusDB runs findAndModify as a
# collection scan (about 200 ms at 20,000 documents), while update_one on {_id, ...} uses the _id index.
LIST_SORT = [("due_at", ASCENDING), ("_id", ASCENDING)]
# Everything the sweep needs, without the history array.
SWEEP_PROJECTION = {"history": 0}


async def by_id(db: Database, rect_id: str, session: AsyncClientSession | None = None) -> Doc | None:
    return await db.rectifications.find_one({"_id": rect_id}, session=session)


async def by_finding(db: Database, finding_id: str, session: AsyncClientSession | None = None) -> Doc | None:
    return await db.rectifications.find_one({"finding_id": finding_id}, session=session)


async def open_findings_of(db: Database, audit_id: str, session: AsyncClientSession) -> list[Doc]:
    """The findings of an audit that still need a fix (not overturned), in a stable order."""
    return (
        await db.findings.find({"audit_id": audit_id, "status": {"$ne": "overturned"}}, session=session)
        .sort("_id", 1)
        .to_list()
    )


async def branch_of(db: Database, branch_id: str, session: AsyncClientSession) -> Doc | None:
    return await db.branches.find_one({"_id": branch_id}, session=session)


async def create_once(db: Database, doc: Doc, session: AsyncClientSession) -> bool:
    """Insert unless the finding already has a rectification; True when this call created it."""
    fields = {k: v for k, v in doc.items() if k != "finding_id"}
    result = await db.rectifications.update_one(
        {"finding_id": doc["finding_id"]}, {"$setOnInsert": fields}, upsert=True, session=session
    )
    return result.upserted_id is not None


async def apply_change(
    db: Database,
    session: AsyncClientSession,
    rect: Doc,
    *,
    set_fields: dict[str, Any],
    history: dict[str, Any],
    unset: list[str] | None = None,
) -> Doc | None:
    """Write a transition if the document is still in the state it was read in (None: it moved meanwhile)."""
    update: dict[str, Any] = {"$set": set_fields, "$push": {"history": history}}
    if unset:
        update["$unset"] = {name: "" for name in unset}
    result = await db.rectifications.update_one({"_id": rect["_id"], "status": rect["status"]}, update,
                                                session=session)
    if result.matched_count != 1:
        return None
    return await db.rectifications.find_one({"_id": rect["_id"]}, session=session)


async def adjust_open_count(db: Database, session: AsyncClientSession, audit_id: str, delta: int) -> None:
    if delta:
        await db.audits.update_one(
            {"_id": audit_id}, {"$inc": {"open_rectifications": delta}}, session=session
        )


async def due_for_reminder(db: Database, now: datetime, limit: int) -> list[Doc]:
    """Due reminders, oldest first, by the next_reminder_at index alone."""
    return (
        await db.rectifications.find({"next_reminder_at": {"$lte": now}}, SWEEP_PROJECTION)
        .sort("next_reminder_at", ASCENDING)
        .limit(limit)
        .to_list()
    )


async def claim_reminder(
    db: Database, session: AsyncClientSession | None, rect: Doc, set_fields: dict[str, Any]
) -> bool:
    """Advance the schedule if nobody else did since `rect` was read: one winner per step, however many
    sweeps run. True when this call won."""
    result = await db.rectifications.update_one(
        {
            "_id": rect["_id"],
            "next_reminder_at": rect["next_reminder_at"],
            "reminder_step": rect["reminder_step"],
        },
        {"$set": set_fields},
        session=session,
    )
    return result.modified_count == 1


async def page(
    db: Database, filters: dict[str, Any], limit: int, cursor: str | None
) -> tuple[list[Doc], str | None]:
    docs = (
        await db.rectifications.find(combine(filters, after_filter(LIST_SORT, cursor)), {"history": 0})
        .sort(LIST_SORT)
        .limit(limit + 1)
        .to_list()
    )
    return page_of(docs, LIST_SORT, limit)


def status_filter(status: str | None, overdue: bool | None, now: datetime) -> dict[str, Any]:
    """?status= and ?overdue= as a query; overdue is computed from the deadline, not the stored flag."""
    clauses: dict[str, Any] = {}
    if status:
        clauses["status"] = status
    if overdue is True:
        clauses.setdefault("status", {"$in": sorted(ACTIVE)})
        if isinstance(clauses["status"], str) and clauses["status"] not in ACTIVE:
            return {"_id": None}  # a closed status is never overdue
        clauses["due_at"] = {"$lt": now}
    elif overdue is False:
        return (
            {"$and": [clauses, {"$or": [{"status": {"$nin": sorted(ACTIVE)}}, {"due_at": {"$gte": now}}]}]}
            if clauses
            else {"$or": [{"status": {"$nin": sorted(ACTIVE)}}, {"due_at": {"$gte": now}}]}
        )
    return clauses


async def open_for_branches(db: Database, branch_ids: list[str]) -> list[Doc]:
    return (
        await db.rectifications.find(
            {"branch_id": {"$in": branch_ids}, "status": {"$in": sorted(ACTIVE)}}, {"history": 0}
        )
        .sort(LIST_SORT)
        .to_list()
    )


# What a rectification shows of its finding (server.http.routes.rectifications._finding).
FINDING_FIELDS = {f: 1 for f in ("item_id", "section_id", "severity", "critical", "answer", "photo_ids", "status",
                                 "fixed_on_spot")}


async def findings_by_id(db: Database, finding_ids: list[str]) -> dict[str, Doc]:
    if not finding_ids:
        return {}
    docs = await db.findings.find({"_id": {"$in": finding_ids}}, FINDING_FIELDS).to_list()
    return {d["_id"]: d for d in docs}
