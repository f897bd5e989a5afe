"""Programs (campaigns of visits) and their assignments (one planned visit each)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession

from server.db import Database, Doc
from server.storage.records import Records

INDEXES: dict[str, list[IndexModel]] = {
    "programs": [IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)])],
    "assignments": [
        IndexModel([("program_id", ASCENDING), ("branch_id", ASCENDING), ("visit_no", ASCENDING)], unique=True),
        IndexModel([("assignee_id", ASCENDING), ("window_start", ASCENDING), ("_id", ASCENDING)]),
        IndexModel([("branch_id", ASCENDING), ("covert", ASCENDING), ("window_start", DESCENDING)]),
        IndexModel([("window_start", ASCENDING), ("_id", ASCENDING)]),
    ],
}
OPEN_ASSIGNMENT = ["planned", "in_progress"]
ASSIGNMENT_SORT = [("window_start", 1), ("_id", 1)]


def public_program(doc: Doc) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "name": doc["name"],
        "checklist_key": doc["checklist_key"],
        "branch_ids": doc.get("branch_ids") or [],
        "region_ids": doc.get("region_ids") or [],
        "starts_on": doc["starts_on"],
        "ends_on": doc["ends_on"],
        "visits_per_branch": doc["visits_per_branch"],
        "channel": doc["channel"],
        "covert": doc["covert"],
        "created_by": doc["created_by"],
        "created_at": doc["created_at"],
        "assignments_generated": bool(doc.get("assignments_generated_at")),
        "cancelled_at": doc.get("cancelled_at"),
        "cancelled_reason": doc.get("cancelled_reason"),
    }


def public_assignment(doc: Doc, *, show_assignee: bool) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "program_id": doc["program_id"],
        "branch_id": doc["branch_id"],
        "region_id": doc["region_id"],
        "checklist_key": doc["checklist_key"],
        "channel": doc["channel"],
        "covert": doc["covert"],
        "window_start": doc["window_start"],
        "window_end": doc["window_end"],
        "status": doc["status"],
        "audit_id": doc.get("audit_id"),
        "assignee_id": doc.get("assignee_id") if show_assignee else None,
    }


_PROGRAMS = Records("programs", sort=[("created_at", -1), ("_id", -1)])
_ASSIGNMENTS = Records("assignments", sort=ASSIGNMENT_SORT)
program, insert_program = _PROGRAMS.by_id, _PROGRAMS.insert
assignment, assignments_page = _ASSIGNMENTS.by_id, _ASSIGNMENTS.page


async def programs_page(db: Database, limit: int, cursor: str | None) -> tuple[list[Doc], str | None]:
    return await _PROGRAMS.page(db, {}, limit, cursor)


async def assignments_of_program(db: Database, program_id: str, session: AsyncClientSession | None = None) -> list[Doc]:
    cursor = db.assignments.find({"program_id": program_id}, session=session)
    return await cursor.sort([("window_start", 1), ("branch_id", 1)]).to_list()


async def insert_assignments(
    db: Database, docs: list[Doc], program_id: str, now: Any, session: AsyncClientSession
) -> None:
    if docs:
        await db.assignments.insert_many(docs, session=session)
    await db.programs.update_one({"_id": program_id}, {"$set": {"assignments_generated_at": now}}, session=session)


async def last_visitors(db: Database, branch_ids: list[str], *, covert: bool) -> dict[str, str]:
    """The assignee of each branch's most recent visit of the same kind (any program)."""
    pipeline: list[dict[str, Any]] = [
        {"$match": {"branch_id": {"$in": branch_ids}, "covert": covert, "status": {"$ne": "cancelled"}}},
        {"$sort": {"branch_id": 1, "window_start": -1}},
        {"$group": {"_id": "$branch_id", "assignee_id": {"$first": "$assignee_id"}}},
    ]
    rows = await (await db.assignments.aggregate(pipeline)).to_list()
    return {row["_id"]: row["assignee_id"] for row in rows if row.get("assignee_id")}


async def open_load(db: Database, person_ids: list[str]) -> dict[str, int]:
    """Open (planned or started) assignments per person, for balancing."""
    pipeline: list[dict[str, Any]] = [
        {"$match": {"assignee_id": {"$in": person_ids}, "status": {"$in": OPEN_ASSIGNMENT}}},
        {"$group": {"_id": "$assignee_id", "n": {"$sum": 1}}},
    ]
    rows = await (await db.assignments.aggregate(pipeline)).to_list()
    return {row["_id"]: int(row["n"]) for row in rows}


async def booked_windows(
    db: Database, person_ids: list[str], start: datetime, end: datetime
) -> dict[str, list[tuple[datetime, datetime]]]:
    """The windows of open assignments each person already has between start and end."""
    query = {
        "assignee_id": {"$in": person_ids},
        "window_start": {"$gte": start, "$lt": end},
        "status": {"$in": OPEN_ASSIGNMENT},
    }
    booked: dict[str, list[tuple[datetime, datetime]]] = {}
    projection = {"assignee_id": 1, "window_start": 1, "window_end": 1}
    async for doc in db.assignments.find(query, projection):
        booked.setdefault(doc["assignee_id"], []).append((doc["window_start"], doc["window_end"]))
    return booked


async def set_assignment_status(
    db: Database, assignment_id: str, status: str, session: AsyncClientSession, audit_id: str | None = None
) -> None:
    changes: dict[str, Any] = {"status": status}
    if audit_id:
        changes["audit_id"] = audit_id
    await db.assignments.update_one({"_id": assignment_id}, {"$set": changes}, session=session)


# --- administration: inside the command's transaction ---------------------------------------------

program_in, set_program_fields = _PROGRAMS.by_id_in, _PROGRAMS.set_fields
assignment_in, set_assignment_fields = _ASSIGNMENTS.by_id_in, _ASSIGNMENTS.set_fields
NOT_STARTED = "planned"


async def not_started_of(db: Database, query: dict[str, Any], session: AsyncClientSession) -> list[Doc]:
    """Visits not started that match `query` (an assignee's, a program's, a branch's)."""
    return await db.assignments.find({**query, "status": NOT_STARTED}, session=session).sort(ASSIGNMENT_SORT).to_list()


async def open_of_branch(db: Database, branch_id: str, session: AsyncClientSession | None = None) -> list[Doc]:
    """A branch's visits planned or under way."""
    cursor = db.assignments.find({"branch_id": branch_id, "status": {"$in": OPEN_ASSIGNMENT}}, session=session)
    return await cursor.sort(ASSIGNMENT_SORT).to_list()


async def count_of_program(db: Database, program_id: str, statuses: list[str], session: AsyncClientSession) -> int:
    return await db.assignments.count_documents({"program_id": program_id, "status": {"$in": statuses}},
                                                session=session)


async def booked_windows_except(
    db: Database, person_id: str, start: datetime, end: datetime, assignment_id: str, session: AsyncClientSession
) -> list[tuple[datetime, datetime]]:
    """A person's open visits starting between start and end, other than `assignment_id`."""
    query = {"assignee_id": person_id, "window_start": {"$gte": start, "$lt": end},
             "status": {"$in": OPEN_ASSIGNMENT}, "_id": {"$ne": assignment_id}}
    docs = await db.assignments.find(query, {"window_start": 1, "window_end": 1}, session=session).to_list()
    return [(d["window_start"], d["window_end"]) for d in docs]


async def previous_visitor(db: Database, branch_id: str, covert: bool, before: datetime, assignment_id: str,
                           session: AsyncClientSession) -> str | None:
    """Who had the branch's visit of the same kind just before `before` (not this one, not cancelled)."""
    doc = await db.assignments.find_one(
        {"branch_id": branch_id, "covert": covert, "window_start": {"$lt": before}, "_id": {"$ne": assignment_id},
         "status": {"$ne": "cancelled"}},
        {"assignee_id": 1}, sort=[("window_start", -1)], session=session)
    return doc.get("assignee_id") if doc else None
