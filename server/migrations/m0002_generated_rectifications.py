"""Migration 2: history written by the generator before it used the workflow's constructors (the demo's six
months of released audits, and `branch-audit generate`; changed in commit 0bc5db8).

Those rectifications were stored in a shape the workflow never writes: a status `rejected` (a rejected fix
goes back to open), no time zone, no history, no assignee, none of the fields the commands read, so
rejecting one was a 500. Their findings lack the checklist version, the auditor and `pending_appeal_id`.

Each such rectification gets what the one constructor (server.domain.rectifications.new_rectification)
gives a new one, keeping everything it already has (status, deadline, dates); a stored `rejected` becomes
`open` again with a `rejected` history entry, and open ones get their reminders scheduled against their
deadline. Old documents are found by the missing time zone (findings: the missing checklist version), which
every upgrade sets, so a second run finds nothing."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from server.db import Doc
from server.domain import rectification_rules as rules
from server.domain.rectifications import new_rectification, schedule_fields
from server.migrations import Migration
from server.storage import checklists as checklist_store

if TYPE_CHECKING:
    from server.context import Services

BATCH = 200
UPGRADE_NOTE = "stored as rejected by an earlier release; open again with its deadline"


def _finding_of(rect: Doc, finding: Doc | None) -> Doc:
    """The finding as the constructor reads it (what the rectification itself says, if the finding is gone)."""
    known = {"_id": rect["finding_id"], "audit_id": rect["audit_id"], "branch_id": rect["branch_id"],
             "region_id": rect.get("region_id"), "item_id": rect["item_id"], "severity": rect["severity"],
             "photo_ids": [], "fixed_on_spot": False}
    return {**known, **(finding or {})}


def upgraded_fields(rect: Doc, base: Doc, services: Services, now: datetime) -> dict[str, Any]:
    """What an old generated rectification lacks, from `base` (a new one for the same finding), and its
    status brought into the workflow. No I/O."""
    fields: dict[str, Any] = {k: v for k, v in base.items() if k not in rect}
    if not rect.get("history"):
        fields["history"] = base["history"][:1]  # the "created" line
    if rect.get("assignee_id") is None and base.get("assignee_id"):
        fields["assignee_id"] = base["assignee_id"]
    timezone = fields.get("timezone") or rect.get("timezone") or "UTC"
    fields["timezone"] = timezone
    status = rect.get("status")
    if status not in ("rejected", rules.OPEN):
        fields.pop("next_reminder_at", None)  # only open work is reminded
    if status in ("rejected", rules.OPEN):
        schedule = schedule_fields(services.reminder_policy, rect["due_at"], now, timezone)
        schedule["escalation_level"] = int(rect.get("escalation_level") or 0)
        fields.update(schedule)
    if status == "rejected":
        fields["status"] = rules.OPEN
        fields["rejection"] = {"comment": UPGRADE_NOTE, "by": None, "at": now}
        history: list[Any] = list(fields.get("history") or rect.get("history") or [])
        fields["history"] = [*history, rules.history_entry("rejected", now, None, rules.SYSTEM, "submitted",
                                                           rules.OPEN, comment=UPGRADE_NOTE,
                                                           due_at=rect["due_at"])]
    if status == rules.VERIFIED and not rect.get("verified_at"):
        fields["verified_at"] = rect.get("closed_at")
    return fields


async def _upgrade_rectification(services: Services, rect: Doc, now: datetime) -> None:
    db = services.db
    finding = await db.findings.find_one({"_id": rect["finding_id"]})
    audit = await db.audits.find_one({"_id": rect["audit_id"]}) or {}
    branch = await db.branches.find_one({"_id": rect["branch_id"]}) or {}
    checklist = None
    if audit.get("checklist_key") and audit.get("checklist_version"):
        checklist = await checklist_store.get_version(db, audit["checklist_key"], int(audit["checklist_version"]))
    released_at = rect.get("released_at") or audit.get("released_at") or rect.get("created_at") or now
    base = new_rectification(
        finding=_finding_of(rect, finding), audit=audit, branch=branch, checklist=checklist,
        released_at=released_at, now=rect.get("created_at") or released_at, policy=services.reminder_policy,
        eod=services.due_end_of_day, rectification_id=rect["_id"],
    )
    await db.rectifications.update_one({"_id": rect["_id"], "timezone": {"$exists": False}},
                                       {"$set": upgraded_fields(rect, base, services, now)})


async def _upgrade_findings(services: Services) -> None:
    db = services.db
    while True:
        old = await db.findings.find({"checklist_version": {"$exists": False}}).limit(BATCH).to_list()
        if not old:
            return
        audits = {a["_id"]: a for a in await db.audits.find(
            {"_id": {"$in": sorted({f["audit_id"] for f in old})}},
            {"checklist_version": 1, "auditor_id": 1}).to_list()}
        for finding in old:
            audit = audits.get(finding["audit_id"], {})
            fields: dict[str, Any] = {"checklist_version": audit.get("checklist_version"),
                                      "auditor_id": finding.get("auditor_id", audit.get("auditor_id"))}
            if "pending_appeal_id" not in finding:
                fields["pending_appeal_id"] = None
            await db.findings.update_one({"_id": finding["_id"]}, {"$set": fields})


async def _apply(services: Services) -> None:
    now = services.clock.now()
    while True:
        old = await services.db.rectifications.find({"timezone": {"$exists": False}}).limit(BATCH).to_list()
        if not old:
            break
        for rect in old:
            await _upgrade_rectification(services, rect, now)
    await _upgrade_findings(services)


MIGRATION = Migration(2, "generated rectifications and findings in the workflow's shape", _apply)
