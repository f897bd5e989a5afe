"""A branch's work in flight across collections: its visits planned or under way, its audits not yet
released and its open rectifications (listed when the branch closes, moved when its time zone changes)."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from server.db import Database, Doc

UNFINISHED_AUDITS = ["in_progress", "submitted", "returned"]
OPEN_RECTIFICATIONS = ["open", "submitted"]


async def unfinished_audits(db: Database, branch_id: str, session: AsyncClientSession | None = None) -> list[Doc]:
    projection = {"_id": 1, "status": 1, "program_id": 1, "started_at": 1, "covert": 1}
    cursor = db.audits.find({"branch_id": branch_id, "status": {"$in": UNFINISHED_AUDITS}}, projection,
                            session=session)
    return await cursor.sort("_id", 1).to_list()


async def open_rectifications(db: Database, branch_id: str,
                              session: AsyncClientSession | None = None) -> list[Doc]:
    projection = {"_id": 1, "status": 1, "due_at": 1, "next_reminder_at": 1, "timezone": 1}
    cursor = db.rectifications.find({"branch_id": branch_id, "status": {"$in": OPEN_RECTIFICATIONS}}, projection,
                                    session=session)
    return await cursor.sort("_id", 1).to_list()


async def set_rectification_fields(db: Database, rect_id: str, changes: dict[str, Any],
                                   session: AsyncClientSession) -> None:
    await db.rectifications.update_one({"_id": rect_id}, {"$set": changes}, session=session)


async def move_to_region(db: Database, branch_id: str, region_id: str, session: AsyncClientSession) -> None:
    """The branch's people and its work in flight follow it to another region (released history stays)."""
    await db.users.update_many({"branch_id": branch_id}, {"$set": {"region_id": region_id}}, session=session)
    await db.assignments.update_many({"branch_id": branch_id, "status": {"$in": ["planned", "in_progress"]}},
                                     {"$set": {"region_id": region_id}}, session=session)
    await db.rectifications.update_many({"branch_id": branch_id, "status": {"$in": OPEN_RECTIFICATIONS}},
                                        {"$set": {"region_id": region_id}}, session=session)

