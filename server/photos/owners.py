"""Whose evidence a photo is (an audit item, a rectification or an appeal of a finding) and who may add, see or
remove it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from server.db import Database, Doc
from server.domain.access import (
    Principal,
    can_add_fix_evidence,
    can_view_appeal_evidence,
    can_view_audit,
    can_view_rectification,
)
from server.errors import Forbidden, InvalidTransition, NotFound, ValidationFailed, field_error
from server.storage import checklists as checklist_store

UPLOAD_AUDIT_STATUSES = ("in_progress", "returned")
# "rejected" is never stored (a rejected fix goes back to open); older demo data had it.
UPLOAD_RECTIFICATION_STATUSES = ("open",)
ITEM_ID = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


@dataclass(frozen=True)
class Owner:
    """What an uploaded photo becomes evidence for."""

    owner_type: str  # audit | rectification | appeal (owner_id: the appealed finding)
    owner_id: str
    branch: Doc
    audit: Doc | None
    rectification: Doc | None = None
    item_id: str | None = None
    finding: Doc | None = None

    @property
    def audit_id(self) -> str | None:
        if self.audit is not None:
            return str(self.audit["_id"])
        return (self.rectification or self.finding or {}).get("audit_id")

    @property
    def key(self) -> str:
        return f"{self.owner_type}:{self.owner_id}"


async def _branch(db: Database, branch_id: str) -> Doc:
    branch = await db.branches.find_one({"_id": branch_id})
    if branch is None:
        raise NotFound("The branch of this evidence no longer exists")
    return branch


async def audit_for_upload(db: Database, who: Principal, audit_id: str) -> Doc:
    """The audit a field user may add a photo to: their own, still being worked on (checked before the
    body is read, so a refused upload costs no bandwidth)."""
    audit = await db.audits.find_one({"_id": audit_id})
    if audit is None or not can_view_audit(who, audit):
        raise NotFound("Audit not found")
    if audit.get("auditor_id") != who.user_id:
        raise Forbidden("Only the audit's own auditor adds photos to it")
    if audit.get("status") not in UPLOAD_AUDIT_STATUSES:
        raise InvalidTransition(
            f"Photos can be added only while the audit is in progress (it is {audit.get('status')})"
        )
    return audit


async def audit_owner(db: Database, audit: Doc, item_id: str | None) -> Owner:
    """The audit item a photo is evidence for."""
    item = await checked_item(db, audit, item_id)
    return Owner("audit", audit["_id"], await _branch(db, audit["branch_id"]), audit, item_id=item)


async def rectification_owner(db: Database, who: Principal, rectification_id: str) -> Owner:
    """The rectification a branch head may add "after" evidence to: their branch's, still open."""
    rect = await db.rectifications.find_one({"_id": rectification_id})
    if rect is None or not can_add_fix_evidence(who, rect):
        raise NotFound("Rectification not found")
    if rect.get("status") not in UPLOAD_RECTIFICATION_STATUSES:
        raise InvalidTransition(
            f"Evidence can be added only while the rectification is open (it is {rect.get('status')})"
        )
    audit = await db.audits.find_one({"_id": rect.get("audit_id")}) if rect.get("audit_id") else None
    return Owner(
        "rectification", rectification_id, await _branch(db, rect["branch_id"]), audit, rectification=rect
    )


async def appeal_owner(db: Database, finding: Doc) -> Owner:
    """The finding an appeal's photos are uploaded for, before the appeal itself is filed (whether the caller
    may still appeal it is server.services.appeals' decision)."""
    return Owner("appeal", finding["_id"], await _branch(db, finding["branch_id"]), None, finding=finding)


async def checked_item(db: Database, audit: Doc, item_id: str | None) -> str:
    """The item id, validated against the audit's pinned checklist version."""
    if not item_id:
        raise ValidationFailed("item_id is required", errors=[field_error(["body", "item_id"], "required")])
    if not ITEM_ID.match(item_id):
        raise ValidationFailed(
            "item_id is not a valid item id", errors=[field_error(["body", "item_id"], "not a valid item id")]
        )
    key, version = audit.get("checklist_key"), audit.get("checklist_version")
    checklist = await checklist_store.get_version(db, key, int(version)) if key and version is not None else None
    if checklist is not None and checklist.item(item_id) is None:
        raise ValidationFailed(
            f"{item_id} is not an item of checklist {audit.get('checklist_key')}",
            errors=[field_error(["body", "item_id"], "not an item of the audit's checklist")],
        )
    return item_id


async def can_view_photo(db: Database, who: Principal, photo: Doc) -> bool:
    """Photos are seen through the audit, rectification or appealed finding they are evidence for."""
    if photo["owner_type"] == "audit":
        audit = await db.audits.find_one({"_id": photo.get("audit_id")})
        return audit is not None and can_view_audit(who, audit)
    if photo["owner_type"] == "appeal":
        finding = await db.findings.find_one({"_id": photo.get("finding_id")})
        return finding is not None and can_view_appeal_evidence(who, finding)
    rect = await db.rectifications.find_one({"_id": photo.get("rectification_id")})
    if rect is None:
        return False
    return can_view_rectification(who, rect)
