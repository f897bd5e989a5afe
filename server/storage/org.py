"""Regions and branches."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession

from server.db import Database, Doc
from server.storage.records import Records

INDEXES: dict[str, list[IndexModel]] = {
    "regions": [IndexModel("code", unique=True)],
    "branches": [
        IndexModel("code", unique=True),
        IndexModel([("region_id", ASCENDING), ("_id", ASCENDING)]),
        IndexModel("head_user_id"),
    ],
}

def public_branch(doc: Doc) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "code": doc["code"],
        "name": doc["name"],
        "region_id": doc["region_id"],
        "address": doc.get("address", ""),
        "location": doc["location"],
        "geofence_m": doc["geofence_m"],
        "timezone": doc["timezone"],
        "branch_type": doc.get("branch_type", "full_service"),
        "opening_hours": doc.get("opening_hours") or {},
        "head_user_id": doc.get("head_user_id"),
        "created_at": doc["created_at"],
        "closed_at": doc.get("closed_at"),
        "closed_reason": doc.get("closed_reason"),
    }


def public_region(doc: Doc) -> dict[str, Any]:
    return {"id": doc["_id"], "code": doc["code"], "name": doc["name"],
            "manager_user_id": doc.get("manager_user_id"), "created_at": doc["created_at"]}


_BRANCHES = Records("branches")
_REGIONS = Records("regions")
branch, branches_page = _BRANCHES.by_id, _BRANCHES.page
region, regions_page = _REGIONS.by_id, _REGIONS.page


async def branches_in(db: Database, *, branch_ids: list[str] | None = None,
                      region_ids: list[str] | None = None) -> list[Doc]:
    query: dict[str, Any] = {}
    if branch_ids:
        query["_id"] = {"$in": branch_ids}
    if region_ids:
        query["region_id"] = {"$in": region_ids}
    return await db.branches.find(query).sort("_id", 1).to_list()


async def set_branch_head(db: Database, branch_id: str, user_id: str, session: AsyncClientSession) -> None:
    await db.branches.update_one({"_id": branch_id, "head_user_id": None}, {"$set": {"head_user_id": user_id}},
                                 session=session)


# --- administration: inside the command's transaction ---------------------------------------------

insert_branch, branch_in, set_branch_fields = _BRANCHES.insert, _BRANCHES.by_id_in, _BRANCHES.set_fields
insert_region, region_in, set_region_fields = _REGIONS.insert, _REGIONS.by_id_in, _REGIONS.set_fields


async def make_branch_head(db: Database, branch_id: str, user_id: str, session: AsyncClientSession) -> None:
    """The branch's head is now `user_id`, whoever it was before (an admin moved them there)."""
    await db.branches.update_one({"_id": branch_id}, {"$set": {"head_user_id": user_id}}, session=session)


async def clear_branch_head(db: Database, branch_id: str, user_id: str, session: AsyncClientSession) -> None:
    """`user_id` is no longer the branch's head (when they still were)."""
    await db.branches.update_one({"_id": branch_id, "head_user_id": user_id}, {"$set": {"head_user_id": None}},
                                 session=session)


async def branches_headed_by(db: Database, user_id: str, session: AsyncClientSession) -> list[Doc]:
    return await db.branches.find({"head_user_id": user_id}, {"_id": 1}, session=session).to_list()
