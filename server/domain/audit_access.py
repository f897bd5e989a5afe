"""What of an audit a caller may see (whether they may see it at all is server.domain.access): branch
roles never get the mystery shopper's identity (a stable pseudonym instead), only the visit date."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from server.domain.access import BRANCH_SIDE, Principal

PSEUDONYM_PREFIX = "Shopper-"


def is_branch_view(who: Principal) -> bool:
    return who.role in BRANCH_SIDE


def pseudonym(auditor_id: str, key: bytes) -> str:
    """A stable stand-in for a shopper: the same shopper always gets the same name, which reveals nothing."""
    digest = hmac.new(key, auditor_id.encode(), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:8]


def pseudonym_key(secret: str) -> bytes:
    """Derive the pseudonym key from the server secret, so pseudonyms survive restarts."""
    return hmac.new(secret.encode(), b"shopper-pseudonym", hashlib.sha256).digest()


def visit_date(moment: datetime | None, timezone: str | None) -> date | None:
    """The local calendar date of a visit (the branch's own day)."""
    if moment is None:
        return None
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return moment.astimezone(zone).date()


def auditor_view(who: Principal, audit: dict[str, Any], key: bytes) -> dict[str, Any]:
    """The auditor as this caller may see them."""
    if is_branch_view(who):
        if audit.get("covert"):
            return {"pseudonym": pseudonym(str(audit.get("auditor_id")), key), "role": "mystery_shopper"}
        return {"id": audit.get("auditor_id"), "role": audit.get("auditor_role")}
    return {
        "id": audit.get("auditor_id"),
        "role": audit.get("auditor_role"),
        "name": audit.get("auditor_name"),
    }


def audit_row(who: Principal, audit: dict[str, Any], key: bytes) -> dict[str, Any]:
    """One history row (assumes can_view_audit)."""
    branch_view = is_branch_view(who)
    row: dict[str, Any] = {
        "id": audit["_id"],
        "branch_id": audit["branch_id"],
        "region_id": audit["region_id"],
        "program_id": audit.get("program_id"),
        "checklist_key": audit["checklist_key"],
        "checklist_version": audit["checklist_version"],
        "channel": audit.get("channel", "in_branch"),
        "covert": bool(audit.get("covert")),
        "status": audit["status"],
        "auditor": auditor_view(who, audit, key),
        "visit_date": visit_date(audit.get("started_at"), audit.get("branch_timezone")),
        "score": audit.get("score"),
        "grade": audit.get("grade"),
        "critical_failed": audit.get("critical_failed"),
        "finding_counts": audit.get("finding_counts") or {"minor": 0, "major": 0, "critical": 0},
        "open_rectifications": int(audit.get("open_rectifications") or 0),
        "released_at": audit.get("released_at"),
    }
    if not branch_view:
        row.update(
            started_at=audit.get("started_at"),
            submitted_at=audit.get("submitted_at"),
            flags=list(audit.get("flags") or []),
        )
    return row


def audit_detail(who: Principal, audit: dict[str, Any], key: bytes) -> dict[str, Any]:
    """The audit itself as this caller may see it (assumes can_view_audit)."""
    detail = audit_row(who, audit, key)
    detail["assignment_id"] = audit.get("assignment_id")
    result = audit.get("result")
    if is_branch_view(who):
        detail.pop("started_at", None)
        detail.pop("submitted_at", None)
        detail["answers"] = {
            item_id: {"value": a.get("value"), "na": a.get("na", False), "note": a.get("note")}
            for item_id, a in (audit.get("answers") or {}).items()
        }
        if result:
            detail["result"] = {
                k: result.get(k)
                for k in ("score", "grade", "critical_failed", "sections", "breakdown", "rules_version")
            }
        detail["assignment_id"] = None
        return detail
    detail.update(
        answers=audit.get("answers") or {},
        checkin=audit.get("checkin"),
        result=result,
        returned_comment=audit.get("returned_comment"),
    )
    return detail


def finding_view(who: Principal, finding: dict[str, Any]) -> dict[str, Any]:
    """A finding; branch roles do not get the creation time of a covert visit's findings."""
    view = {
        "id": finding["_id"],
        "audit_id": finding["audit_id"],
        "branch_id": finding["branch_id"],
        "region_id": finding["region_id"],
        "program_id": finding.get("program_id"),
        "checklist_key": finding["checklist_key"],
        "item_id": finding["item_id"],
        "section_id": finding["section_id"],
        "severity": finding["severity"],
        "critical": bool(finding.get("critical")),
        "answer": finding.get("answer") or {},
        "photo_ids": list(finding.get("photo_ids") or []),
        "status": finding["status"],
        "fixed_on_spot": bool(finding.get("fixed_on_spot")),
        "created_at": finding.get("created_at"),
        "released_at": finding.get("released_at"),
        "pending_appeal_id": finding.get("pending_appeal_id"),
    }
    if is_branch_view(who) and finding.get("covert"):
        view["created_at"] = None
    return view
