"""Writes of the appeal workflow (reads of appeals stay in server.storage.audits)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from server.db import Database, Doc


async def photos_for_appeal(db: Database, photo_ids: list[str], finding_id: str, uploader_id: str) -> bool:
    """Whether every photo exists and was uploaded for an appeal of this finding by this user."""
    known = await db.photos.count_documents(
        {"_id": {"$in": photo_ids}, "owner_type": "appeal", "finding_id": finding_id, "uploader_id": uploader_id}
    )
    return bool(known == len(set(photo_ids)))


async def claim_finding(db: Database, finding_id: str, appeal_id: str, session: AsyncClientSession) -> bool:
    """Mark an open finding as under appeal; False when it already is (or is no longer open)."""
    claimed = await db.findings.update_one(
        {"_id": finding_id, "status": "open", "pending_appeal_id": None},
        {"$set": {"pending_appeal_id": appeal_id}},
        session=session,
    )
    return claimed.modified_count == 1


async def insert_appeal(db: Database, appeal: Doc, session: AsyncClientSession) -> None:
    await db.appeals.insert_one(appeal, session=session)


async def decide(db: Database, appeal_id: str, decided: dict[str, Any], session: AsyncClientSession) -> bool:
    """Record the decision of a pending appeal; False when it was decided meanwhile."""
    done = await db.appeals.update_one(
        {"_id": appeal_id, "status": "pending"}, {"$set": decided}, session=session
    )
    return done.modified_count == 1


async def settle_finding(
    db: Database, finding_id: str, overturned: bool, now: datetime, session: AsyncClientSession
) -> None:
    """The finding is no longer under appeal; overturned, it no longer counts."""
    change: dict[str, Any] = {"pending_appeal_id": None}
    if overturned:
        change.update(status="overturned", overturned_at=now)
    await db.findings.update_one({"_id": finding_id}, {"$set": change}, session=session)


async def rescore_audit(db: Database, audit_id: str, changes: dict[str, Any], session: AsyncClientSession) -> None:
    await db.audits.update_one({"_id": audit_id}, {"$set": changes}, session=session)
