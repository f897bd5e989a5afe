"""The rectification document without I/O: its one constructor, and each change of the workflow as the
fields it sets, the fields it clears and the history line it adds. The commands of
server.services.rectifications write these changes; the demo history generator replays them in memory,
so every stored rectification is one the workflow can produce."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from schemas.checklist import Checklist, DuePolicy
from server.domain import rectification_rules as rules
from server.domain.access import Doc
from server.domain.deadlines import due_at as compute_due_at
from server.domain.reminders import ReminderPolicy


@dataclass(frozen=True)
class Actor:
    """Who makes a change, as its history line names them."""

    user_id: str | None
    role: str | None


SYSTEM = Actor(None, rules.SYSTEM)


@dataclass(frozen=True)
class Change:
    """One step of the workflow: what it writes on the document as it was read."""

    set_fields: dict[str, Any]
    history: dict[str, Any]
    unset: list[str] = field(default_factory=list)

    def applied_to(self, rect: Doc) -> Doc:
        """The document after this change (what the database holds once it is written)."""
        after = {k: v for k, v in rect.items() if k not in self.unset}
        after.update(self.set_fields)
        after["history"] = [*rect.get("history", []), self.history]
        return after


def schedule_fields(policy: ReminderPolicy, due_at: datetime, now: datetime, timezone: str) -> dict[str, Any]:
    """Reminder fields for an item (re)starting its schedule against `due_at`."""
    step = policy.first_step(due_at, now, timezone)
    return {
        "reminder_step": step,
        "next_reminder_at": policy.delivery_time(due_at, step, timezone),
        "escalation_level": 0,
        "overdue": rules.is_overdue(rules.OPEN, due_at, now),
    }


def due_policy_of(rect: Doc) -> DuePolicy | None:
    raw = rect.get("due_policy")
    return DuePolicy.model_validate(raw) if raw else None


def new_rectification(
    *,
    finding: Doc,
    audit: Doc,
    branch: Doc,
    checklist: Checklist | None,
    released_at: datetime,
    now: datetime,
    policy: ReminderPolicy,
    eod: time,
    rectification_id: str | None = None,
) -> Doc:
    """The rectification of one finding of a released audit: open with a deadline by severity in the
    branch's time zone, or verified at once when the inspector fixed it on the spot."""
    due_policy = checklist.due_policy if checklist else None
    timezone = branch.get("timezone") or "UTC"
    due = compute_due_at(released_at, finding["severity"], due_policy, timezone, eod)
    item = checklist.item(finding["item_id"]) if checklist else None
    fixed = bool(finding.get("fixed_on_spot"))
    inspector_id = audit.get("auditor_id")
    photos = list(finding.get("photo_ids") or [])
    doc: Doc = {
        "_id": rectification_id or str(uuid.uuid4()),
        "finding_id": finding["_id"],
        "audit_id": finding["audit_id"],
        "branch_id": finding["branch_id"],
        "region_id": finding.get("region_id") or branch.get("region_id"),
        "program_id": audit.get("program_id"),
        "checklist_key": audit.get("checklist_key"),
        "checklist_version": audit.get("checklist_version"),
        "item_id": finding["item_id"],
        "section_id": finding.get("section_id"),
        "item_text": item.text.model_dump(by_alias=True) if item else None,
        "severity": finding["severity"],
        "critical": bool(finding.get("critical")),
        "due_policy": due_policy.model_dump() if due_policy else None,
        "due_at": due,
        "timezone": timezone,
        "branch_name": branch.get("name", ""),
        "assignee_id": branch.get("head_user_id"),
        "inspector_id": inspector_id,
        "auditor_role": audit.get("auditor_role"),
        "inspector_photo_ids": photos,
        "photo_ids": photos if fixed else [],
        "note": None,
        "submitted_by": None,
        "verified_by": None,
        "extension": None,
        "fixed_on_spot": fixed,
        "released_at": released_at,
        "created_at": now,
        "reminder_step": 0,
        "escalation_level": 0,
        "overdue": False,
    }
    if fixed:
        doc.update(
            status=rules.VERIFIED,
            verified_by=inspector_id,
            verified_at=released_at,
            closed_at=now,
            history=[
                rules.history_entry(
                    "created", now, None, rules.SYSTEM, None, rules.VERIFIED,
                    comment="fixed on the spot during the audit", due_at=due,
                )
            ],
        )
    else:
        doc.update(
            status=rules.OPEN,
            closed_at=None,
            **schedule_fields(policy, due, now, timezone),
            history=[rules.history_entry("created", now, None, rules.SYSTEM, None, rules.OPEN, due_at=due)],
        )
    return doc


def submitted(rect: Doc, by: Actor, note: str, now: datetime) -> Change:
    """The branch head hands in the fix; reminders pause while it waits for verification."""
    rules.ensure_submittable(rect)
    target = rules.target_status("submit", rect["status"])
    return Change(
        set_fields={"status": target, "note": note, "submitted_by": by.user_id, "submitted_at": now},
        unset=["next_reminder_at"],
        history=rules.history_entry(
            "submitted", now, by.user_id, by.role, rect["status"], target,
            comment=note or None, photo_ids=list(rect["photo_ids"]),
        ),
    )


def verified(rect: Doc, by: Actor, comment: str, now: datetime) -> Change:
    target = rules.target_status("verify", rect["status"])
    return Change(
        set_fields={
            "status": target,
            "verified_by": by.user_id,
            "verified_at": now,
            "closed_at": now,
            "overdue": False,
            "verify_comment": comment,
        },
        unset=["next_reminder_at"],
        history=rules.history_entry(
            "verified", now, by.user_id, by.role, rect["status"], target, comment=comment or None
        ),
    )


def rejected(rect: Doc, by: Actor, comment: str, new_due: datetime, policy: ReminderPolicy, now: datetime) -> Change:
    """Back to open with a new deadline, its reminders started again."""
    target = rules.target_status("reject", rect["status"])
    return Change(
        set_fields={
            "status": target,
            "due_at": new_due,
            **schedule_fields(policy, new_due, now, rect["timezone"]),
            "rejection": {"comment": comment, "by": by.user_id, "at": now},
        },
        history=rules.history_entry(
            "rejected", now, by.user_id, by.role, rect["status"], target, comment=comment, due_at=new_due
        ),
    )


def rejection_deadline(rect: Doc, given: datetime | None, now: datetime, eod: time) -> datetime:
    """The deadline after a rejection: the one given, or the severity policy counted again from now."""
    return given or compute_due_at(now, rect["severity"], due_policy_of(rect), rect["timezone"], eod)


def cancelled(rect: Doc, by: Actor, reason: str, now: datetime) -> Change:
    target = rules.target_status("cancel", rect["status"])
    return Change(
        set_fields={"status": target, "closed_at": now, "overdue": False},
        unset=["next_reminder_at"],
        history=rules.history_entry("cancelled", now, by.user_id, by.role, rect["status"], target, comment=reason),
    )


def extension_requested(rect: Doc, by: Actor, requested_due_at: datetime, reason: str, now: datetime) -> Change:
    rules.ensure_extension_requestable(rect, requested_due_at, now)
    status = rules.target_status("request_extension", rect["status"])
    extension = {
        "requested_due_at": requested_due_at,
        "reason": reason,
        "status": "pending",
        "requested_by": by.user_id,
        "requested_at": now,
    }
    return Change(
        set_fields={"extension": extension},
        history=rules.history_entry(
            "extension_requested", now, by.user_id, by.role, rect["status"], status,
            comment=reason, due_at=requested_due_at,
        ),
    )


def extension_decided(
    rect: Doc, by: Actor, approve: bool, comment: str, policy: ReminderPolicy, now: datetime
) -> Change:
    """Approval moves the deadline (and restarts the reminders from it); refusal keeps it."""
    rules.ensure_extension_decidable(rect)
    status = rules.target_status("decide_extension", rect["status"])
    extension = dict(rect["extension"])
    requested = extension["requested_due_at"]
    extension.update(
        status="approved" if approve else "refused", decided_by=by.user_id, decided_at=now, comment=comment
    )
    fields: dict[str, Any] = {"extension": extension}
    if approve:
        fields["due_at"] = requested
        fields["overdue"] = False
        if rect["status"] == rules.OPEN:
            fields.update(schedule_fields(policy, requested, now, rect["timezone"]))
    return Change(
        set_fields=fields,
        history=rules.history_entry(
            "extension_approved" if approve else "extension_refused", now, by.user_id, by.role,
            rect["status"], status, comment=comment or None, due_at=requested,
        ),
    )
