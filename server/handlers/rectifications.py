"""The write side of the rectification workflow: reactions to events (an audit released, an appeal decided)
and the commands the API runs (submit, verify, reject, extension request and decision).

Each function runs inside a unit of work: the state change, its history line, the audit's
`open_rectifications` counter, the reminder schedule, its event and its trail entry commit together.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, time
from typing import Any

from pydantic import BaseModel

from schemas.checklist import Checklist, DuePolicy
from schemas.rectification_events import (
    RectificationCancelled,
    RectificationCreated,
    RectificationExtensionDecided,
    RectificationExtensionRequested,
    RectificationRejected,
    RectificationSubmitted,
    RectificationVerified,
)
from server.context import Services, UnitOfWork
from server.db import Database, Doc
from server.domain import rectification_rules as rules
from server.domain.deadlines import due_at as compute_due_at
from server.domain.deadlines import parse_local_time
from server.domain.reminders import ReminderPolicy
from server.errors import InvalidTransition, NotFound, ValidationFailed, field_error
from server.handlers.base import EventHandler
from server.storage import rectifications as store

log = logging.getLogger("branch_audit.rectifications")


# --- configuration read once per process ------------------------------------------------------------


def reminder_policy(services: Services) -> ReminderPolicy:
    """The reminder schedule from the settings (cached on the services)."""
    found = services.extras.get("reminder_policy")
    if not isinstance(found, ReminderPolicy):
        s = services.settings
        found = ReminderPolicy.from_text(
            before_hours=s.reminder_before_hours,
            overdue_every_hours=s.reminder_overdue_every_hours,
            regional_after_hours=s.escalate_regional_after_hours,
            compliance_after_hours=s.escalate_compliance_after_hours,
            quiet_hours=s.quiet_hours,
            digest_at=s.digest_local_time,
        )
        services.extras["reminder_policy"] = found
    return found


def end_of_day(services: Services) -> time:
    return parse_local_time(services.settings.due_end_of_day)


def schedule_fields(policy: ReminderPolicy, due_at: datetime, now: datetime, timezone: str) -> dict[str, Any]:
    """Reminder fields for an item (re)starting its schedule against `due_at`."""
    step = policy.first_step(due_at, now, timezone)
    return {
        "reminder_step": step,
        "next_reminder_at": policy.delivery_time(due_at, step, timezone),
        "escalation_level": 0,
        "overdue": rules.is_overdue(rules.OPEN, due_at, now),
    }


async def pinned_checklist(db: Database, key: str | None, version: int | None) -> Checklist | None:
    """The checklist version the audit used, if the checklists area can provide it."""
    if not key or version is None:
        return None
    try:
        from server.storage import checklists
    except ModuleNotFoundError:
        return None
    get_version = getattr(checklists, "get_version", None)
    if get_version is None:
        return None
    found = await get_version(db, key, int(version))
    return found if isinstance(found, Checklist) else None


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _base(rect: Doc) -> dict[str, Any]:
    return {
        "rectification_id": rect["_id"],
        "finding_id": rect["finding_id"],
        "audit_id": rect["audit_id"],
        "branch_id": rect["branch_id"],
        "status": rect["status"],
        "due_at": rect["due_at"],
    }


def _emit(uow: UnitOfWork, rect: Doc, payload: BaseModel) -> None:
    uow.emit(
        payload,
        subject_type="rectification",
        subject_id=rect["_id"],
        audit_id=rect["audit_id"],
        branch_id=rect["branch_id"],
        region_id=rect.get("region_id"),
        finding_id=rect["finding_id"],
    )


def _trail(uow: UnitOfWork, action: str, rect: Doc, summary: dict[str, Any]) -> None:
    uow.record(
        action,
        "rectification",
        rect["_id"],
        summary,
        audit_id=rect["audit_id"],
        branch_id=rect["branch_id"],
        finding_id=rect["finding_id"],
    )


# --- reactions to events ----------------------------------------------------------------------------


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
) -> Doc:
    """The rectification document for one finding of a released audit."""
    due_policy = checklist.due_policy if checklist else None
    timezone = branch.get("timezone") or "UTC"
    due = compute_due_at(released_at, finding["severity"], due_policy, timezone, eod)
    item = checklist.item(finding["item_id"]) if checklist else None
    fixed = bool(finding.get("fixed_on_spot"))
    inspector_id = audit.get("auditor_id")
    photos = list(finding.get("photo_ids") or [])
    doc: Doc = {
        "_id": str(uuid.uuid4()),
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
                    "created",
                    now,
                    None,
                    "system",
                    None,
                    rules.VERIFIED,
                    comment="fixed on the spot during the audit",
                    due_at=due,
                )
            ],
        )
    else:
        doc.update(
            status=rules.OPEN,
            closed_at=None,
            **schedule_fields(policy, due, now, timezone),
            history=[rules.history_entry("created", now, None, "system", None, rules.OPEN, due_at=due)],
        )
    return doc


async def on_audit_released(uow: UnitOfWork, event: Doc) -> None:
    """One rectification per open finding of the released audit (the unique finding_id makes it once)."""
    payload = event["payload"]
    audit_id = payload["audit_id"]
    audit = await uow.db.audits.find_one({"_id": audit_id}, session=uow.session) or {}
    branch = await uow.db.branches.find_one({"_id": payload["branch_id"]}, session=uow.session)
    if branch is None:
        log.warning("audit released for an unknown branch", extra={"audit_id": audit_id})
        return
    checklist = await pinned_checklist(
        uow.db,
        payload.get("checklist_key") or audit.get("checklist_key"),
        payload.get("checklist_version") or audit.get("checklist_version"),
    )
    audit = {
        "checklist_key": payload.get("checklist_key"),
        "checklist_version": payload.get("checklist_version"),
        "program_id": payload.get("program_id"),
        **audit,
    }
    released_at = _as_datetime(payload.get("released_at") or audit.get("released_at") or uow.now)
    findings = (
        await uow.db.findings.find(
            {"audit_id": audit_id, "status": {"$ne": "overturned"}}, session=uow.session
        )
        .sort("_id", 1)
        .to_list()
    )
    policy = reminder_policy(uow.services)
    eod = end_of_day(uow.services)
    opened = 0
    for finding in findings:
        doc = new_rectification(
            finding=finding,
            audit=audit,
            branch=branch,
            checklist=checklist,
            released_at=released_at,
            now=uow.now,
            policy=policy,
            eod=eod,
        )
        if not await store.create_once(uow.db, doc, uow.session):
            continue
        if doc["status"] == rules.OPEN:
            opened += 1
        _emit(
            uow,
            doc,
            RectificationCreated(
                **_base(doc),
                item_id=doc["item_id"],
                severity=doc["severity"],
                assignee_id=doc["assignee_id"],
                fixed_on_spot=doc["fixed_on_spot"],
            ),
        )
        _trail(
            uow,
            "rectification.create",
            doc,
            {"status": doc["status"], "due_at": doc["due_at"].isoformat(), "severity": doc["severity"]},
        )
    await store.adjust_open_count(uow.db, uow.session, audit_id, opened)


async def on_appeal_decided(uow: UnitOfWork, event: Doc) -> None:
    """A finding overturned on appeal needs no fix: its rectification is cancelled and stops reminding."""
    payload = event["payload"]
    if payload.get("outcome") != "overturned":
        return
    rect = await store.by_finding(uow.db, payload["finding_id"], uow.session)
    if rect is None or rect["status"] not in rules.ACTIVE:
        return
    await cancel(uow, rect, reason=f"finding overturned on appeal {payload.get('appeal_id')}")


async def cancel(uow: UnitOfWork, rect: Doc, *, reason: str) -> Doc:
    rules.transition("cancel", rect["status"])
    changed = await store.apply_change(
        uow.db,
        uow.session,
        rect,
        set_fields={"status": rules.CANCELLED, "closed_at": uow.now, "overdue": False},
        unset=["next_reminder_at"],
        history=rules.history_entry(
            "cancelled",
            uow.now,
            uow.actor.user_id,
            uow.actor.role,
            rect["status"],
            rules.CANCELLED,
            comment=reason,
        ),
    )
    if changed is None:
        raise InvalidTransition("The rectification changed meanwhile; reload it")
    await store.adjust_open_count(uow.db, uow.session, rect["audit_id"], -1)
    _emit(uow, changed, RectificationCancelled(**_base(changed), reason=reason))
    _trail(uow, "rectification.cancel", changed, {"reason": reason})
    return changed


async def dispatch(uow: UnitOfWork, event: Doc) -> None:
    if event["type"] == "audit.released":
        await on_audit_released(uow, event)
    elif event["type"] == "appeal.decided":
        await on_appeal_decided(uow, event)


HANDLERS = [EventHandler("rectifications", frozenset({"audit.released", "appeal.decided"}), dispatch)]


# --- commands (the API) ---------------------------------------------------------------------------


async def _load(uow: UnitOfWork, rect_id: str) -> Doc:
    rect = await store.by_id(uow.db, rect_id, uow.session)
    if rect is None:
        raise NotFound("Rectification not found")
    return rect


async def _write(
    uow: UnitOfWork,
    rect: Doc,
    *,
    set_fields: dict[str, Any],
    history: dict[str, Any],
    unset: list[str] | None = None,
) -> Doc:
    changed = await store.apply_change(
        uow.db, uow.session, rect, set_fields=set_fields, history=history, unset=unset
    )
    if changed is None:
        raise InvalidTransition("The rectification changed meanwhile; reload it")
    return changed


async def submit(uow: UnitOfWork, rect_id: str, note: str) -> Doc:
    """The branch head hands in the fix; reminders pause while it waits for verification."""
    rect = await _load(uow, rect_id)
    rules.ensure_actor_may("submit", uow.actor.role, uow.actor.user_id, rect)
    rules.ensure_submittable(rect)
    changed = await _write(
        uow,
        rect,
        set_fields={
            "status": rules.SUBMITTED,
            "note": note,
            "submitted_by": uow.actor.user_id,
            "submitted_at": uow.now,
        },
        unset=["next_reminder_at"],
        history=rules.history_entry(
            "submitted",
            uow.now,
            uow.actor.user_id,
            uow.actor.role,
            rect["status"],
            rules.SUBMITTED,
            comment=note or None,
            photo_ids=list(rect["photo_ids"]),
        ),
    )
    _emit(
        uow,
        changed,
        RectificationSubmitted(
            **_base(changed), submitted_by=uow.actor.user_id or "", photo_ids=list(changed["photo_ids"])
        ),
    )
    _trail(uow, "rectification.submit", changed, {"photos": len(changed["photo_ids"])})
    return changed


async def verify(uow: UnitOfWork, rect_id: str, comment: str) -> Doc:
    rect = await _load(uow, rect_id)
    rules.ensure_actor_may("verify", uow.actor.role, uow.actor.user_id, rect)
    rules.transition("verify", rect["status"])
    changed = await _write(
        uow,
        rect,
        set_fields={
            "status": rules.VERIFIED,
            "verified_by": uow.actor.user_id,
            "verified_at": uow.now,
            "closed_at": uow.now,
            "overdue": False,
            "verify_comment": comment,
        },
        unset=["next_reminder_at"],
        history=rules.history_entry(
            "verified",
            uow.now,
            uow.actor.user_id,
            uow.actor.role,
            rect["status"],
            rules.VERIFIED,
            comment=comment or None,
        ),
    )
    await store.adjust_open_count(uow.db, uow.session, rect["audit_id"], -1)
    _emit(
        uow,
        changed,
        RectificationVerified(**_base(changed), verified_by=uow.actor.user_id or "", comment=comment),
    )
    _trail(uow, "rectification.verify", changed, {"comment": comment})
    return changed


def _due_policy(rect: Doc) -> DuePolicy | None:
    raw = rect.get("due_policy")
    return DuePolicy.model_validate(raw) if raw else None


async def reject(uow: UnitOfWork, rect_id: str, comment: str, due_at: datetime | None) -> Doc:
    """Back to open with a new deadline (given, or the severity policy counted again from now)."""
    rect = await _load(uow, rect_id)
    rules.ensure_actor_may("reject", uow.actor.role, uow.actor.user_id, rect)
    rules.transition("reject", rect["status"])
    services = uow.services
    new_due = due_at or compute_due_at(
        uow.now, rect["severity"], _due_policy(rect), rect["timezone"], end_of_day(services)
    )
    if new_due <= uow.now:
        raise ValidationFailed(
            "The new deadline must be in the future",
            errors=[field_error(["body", "due_at"], "must be later than now")],
        )
    schedule = schedule_fields(reminder_policy(services), new_due, uow.now, rect["timezone"])
    changed = await _write(
        uow,
        rect,
        set_fields={
            "status": rules.OPEN,
            "due_at": new_due,
            **schedule,
            "rejection": {"comment": comment, "by": uow.actor.user_id, "at": uow.now},
        },
        history=rules.history_entry(
            "rejected",
            uow.now,
            uow.actor.user_id,
            uow.actor.role,
            rect["status"],
            rules.OPEN,
            comment=comment,
            due_at=new_due,
        ),
    )
    _emit(
        uow,
        changed,
        RectificationRejected(
            **_base(changed),
            rejected_by=uow.actor.user_id or "",
            comment=comment,
            previous_due_at=rect["due_at"],
        ),
    )
    _trail(uow, "rectification.reject", changed, {"comment": comment, "due_at": new_due.isoformat()})
    return changed


async def request_extension(uow: UnitOfWork, rect_id: str, requested_due_at: datetime, reason: str) -> Doc:
    rect = await _load(uow, rect_id)
    rules.ensure_actor_may("request_extension", uow.actor.role, uow.actor.user_id, rect)
    rules.ensure_extension_requestable(rect, requested_due_at, uow.now)
    extension = {
        "requested_due_at": requested_due_at,
        "reason": reason,
        "status": "pending",
        "requested_by": uow.actor.user_id,
        "requested_at": uow.now,
    }
    changed = await _write(
        uow,
        rect,
        set_fields={"extension": extension},
        history=rules.history_entry(
            "extension_requested",
            uow.now,
            uow.actor.user_id,
            uow.actor.role,
            rect["status"],
            rect["status"],
            comment=reason,
            due_at=requested_due_at,
        ),
    )
    _emit(
        uow,
        changed,
        RectificationExtensionRequested(
            **_base(changed),
            requested_due_at=requested_due_at,
            reason=reason,
            requested_by=uow.actor.user_id or "",
        ),
    )
    _trail(
        uow,
        "rectification.request_extension",
        changed,
        {"requested_due_at": requested_due_at.isoformat(), "reason": reason},
    )
    return changed


async def decide_extension(uow: UnitOfWork, rect_id: str, approve: bool, comment: str) -> Doc:
    """Approval moves the deadline (and restarts the reminders from it); refusal keeps it."""
    rect = await _load(uow, rect_id)
    rules.ensure_actor_may("decide_extension", uow.actor.role, uow.actor.user_id, rect)
    rules.ensure_extension_decidable(rect)
    extension = dict(rect["extension"])
    requested = extension["requested_due_at"]
    extension.update(
        status="approved" if approve else "refused",
        decided_by=uow.actor.user_id,
        decided_at=uow.now,
        comment=comment,
    )
    fields: dict[str, Any] = {"extension": extension}
    if approve:
        fields["due_at"] = requested
        fields["overdue"] = False
        if rect["status"] == rules.OPEN:
            fields.update(
                schedule_fields(reminder_policy(uow.services), requested, uow.now, rect["timezone"])
            )
    changed = await _write(
        uow,
        rect,
        set_fields=fields,
        history=rules.history_entry(
            "extension_approved" if approve else "extension_refused",
            uow.now,
            uow.actor.user_id,
            uow.actor.role,
            rect["status"],
            rect["status"],
            comment=comment or None,
            due_at=requested,
        ),
    )
    _emit(
        uow,
        changed,
        RectificationExtensionDecided(
            **_base(changed),
            approved=approve,
            requested_due_at=requested,
            decided_by=uow.actor.user_id or "",
            comment=comment,
        ),
    )
    _trail(uow, "rectification.decide_extension", changed, {"approved": approve, "comment": comment})
    return changed
