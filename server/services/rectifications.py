"""Rectification commands: the branch head submits a fix or asks for more time; the inspector or
compliance verifies or rejects it; compliance or the regional manager decides an extension. And the two
reactions to events: a released audit opens one rectification per finding, and a finding overturned on
appeal cancels its rectification.

Each command writes the state change (server.domain.rectifications), its history line, the audit's
`open_rectifications` counter, the reminder schedule, its event and its trail entry in one transaction."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from schemas.audit_events import AppealDecided, AuditReleased
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
from server.db import Doc
from server.domain import access
from server.domain import rectification_rules as rules
from server.domain import rectifications as workflow
from server.domain.access import Principal
from server.domain.rectifications import Actor, Change
from server.errors import InvalidTransition, NotFound, ValidationFailed, field_error
from server.services import NO_ORIGIN, Origin, actor_of, found
from server.storage import audits as audit_store
from server.storage import checklists as checklist_store
from server.storage import rectifications as store

log = logging.getLogger("branch_audit.rectifications")


@dataclass(frozen=True)
class SubmitFix:
    rectification_id: str
    note: str


@dataclass(frozen=True)
class VerifyFix:
    rectification_id: str
    comment: str


@dataclass(frozen=True)
class RejectFix:
    rectification_id: str
    comment: str
    due_at: datetime | None = None  # default: the severity policy counted again from now


@dataclass(frozen=True)
class RequestExtension:
    rectification_id: str
    requested_due_at: datetime
    reason: str


@dataclass(frozen=True)
class DecideExtension:
    rectification_id: str
    approve: bool
    comment: str


# --- events and trail -------------------------------------------------------------------------------


def event_base(rect: Doc) -> dict[str, Any]:
    """What every rectification.* event carries."""
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


async def _write(uow: UnitOfWork, rect: Doc, change: Change) -> Doc:
    """Write a change on the document as it was read; 409 when it moved meanwhile."""
    changed = await store.apply_change(
        uow.db, uow.session, rect, set_fields=change.set_fields, history=change.history, unset=change.unset or None
    )
    if changed is None:
        raise InvalidTransition("The rectification changed meanwhile; reload it")
    return changed


def _actor(uow: UnitOfWork) -> Actor:
    return Actor(uow.actor.user_id, uow.actor.role)


async def visible_rectification(services: Services, who: Principal, rect_id: str) -> Doc:
    """The rectification if the caller may know it exists, else 404."""
    rect = await store.by_id(services.db, rect_id)
    if rect is None or not access.can_view_rectification(who, rect):
        raise NotFound("Rectification not found")
    return rect


# What a command's step returns: the rectification as written, its event and its trail entry's summary.
Told = tuple[Doc, BaseModel, dict[str, Any]]
Step = Callable[[UnitOfWork, Doc], Awaitable[Told]]


async def _command(services: Services, caller: Principal, rect_id: str, origin: Origin, action: str,
                   step: Step) -> Doc:
    """Run `step(uow, rect)` on a rectification the caller can see and may take `action` on, in one
    transaction, with its event and its trail entry (`rectification.<action>`)."""
    await visible_rectification(services, caller, rect_id)

    async def work(uow: UnitOfWork) -> Doc:
        rect = found(await store.by_id(uow.db, rect_id, uow.session), "Rectification")
        rules.ensure_actor_may(action, uow.actor.role, uow.actor.user_id, rect)
        changed, event, summary = await step(uow, rect)
        _emit(uow, changed, event)
        _trail(uow, f"rectification.{action}", changed, summary)
        return changed

    return await services.transact(actor_of(caller, origin), work)


# --- commands -----------------------------------------------------------------------------------------


async def submit_fix(services: Services, caller: Principal, command: SubmitFix, *,
                     origin: Origin = NO_ORIGIN) -> Doc:
    """The branch head hands in the fix (at least one after photo); reminders pause meanwhile."""

    async def step(uow: UnitOfWork, rect: Doc) -> Told:
        changed = await _write(uow, rect, workflow.submitted(rect, _actor(uow), command.note, uow.now))
        photos = list(changed["photo_ids"])
        return changed, RectificationSubmitted(
            **event_base(changed), submitted_by=uow.actor.user_id or "", photo_ids=photos), {"photos": len(photos)}

    return await _command(services, caller, command.rectification_id, origin, "submit", step)


async def verify_fix(services: Services, caller: Principal, command: VerifyFix, *,
                     origin: Origin = NO_ORIGIN) -> Doc:
    """The inspector or compliance accepts the fix (never the person who submitted it)."""

    async def step(uow: UnitOfWork, rect: Doc) -> Told:
        changed = await _write(uow, rect, workflow.verified(rect, _actor(uow), command.comment, uow.now))
        await store.adjust_open_count(uow.db, uow.session, rect["audit_id"], -1)
        return changed, RectificationVerified(
            **event_base(changed), verified_by=uow.actor.user_id or "", comment=command.comment
        ), {"comment": command.comment}

    return await _command(services, caller, command.rectification_id, origin, "verify", step)


async def reject_fix(services: Services, caller: Principal, command: RejectFix, *,
                     origin: Origin = NO_ORIGIN) -> Doc:
    """Back to open with a new deadline in the future (given, or the severity policy counted from now)."""

    async def step(uow: UnitOfWork, rect: Doc) -> Told:
        rules.transition("reject", rect["status"])
        new_due = workflow.rejection_deadline(rect, command.due_at, uow.now, services.due_end_of_day)
        if new_due <= uow.now:
            raise ValidationFailed(
                "The new deadline must be in the future",
                errors=[field_error(["body", "due_at"], "must be later than now")],
            )
        change = workflow.rejected(rect, _actor(uow), command.comment, new_due, services.reminder_policy, uow.now)
        changed = await _write(uow, rect, change)
        return changed, RectificationRejected(
            **event_base(changed), rejected_by=uow.actor.user_id or "", comment=command.comment,
            previous_due_at=rect["due_at"],
        ), {"comment": command.comment, "due_at": new_due.isoformat()}

    return await _command(services, caller, command.rectification_id, origin, "reject", step)


async def request_extension(services: Services, caller: Principal, command: RequestExtension, *,
                            origin: Origin = NO_ORIGIN) -> Doc:
    """The branch head asks for a later deadline (one pending request at a time)."""

    async def step(uow: UnitOfWork, rect: Doc) -> Told:
        change = workflow.extension_requested(rect, _actor(uow), command.requested_due_at, command.reason, uow.now)
        changed = await _write(uow, rect, change)
        return changed, RectificationExtensionRequested(
            **event_base(changed), requested_due_at=command.requested_due_at, reason=command.reason,
            requested_by=uow.actor.user_id or "",
        ), {"requested_due_at": command.requested_due_at.isoformat(), "reason": command.reason}

    return await _command(services, caller, command.rectification_id, origin, "request_extension", step)


async def decide_extension(services: Services, caller: Principal, command: DecideExtension, *,
                           origin: Origin = NO_ORIGIN) -> Doc:
    """Approval moves the deadline (and restarts the reminders from it); refusal keeps it."""

    async def step(uow: UnitOfWork, rect: Doc) -> Told:
        change = workflow.extension_decided(
            rect, _actor(uow), command.approve, command.comment, services.reminder_policy, uow.now
        )
        changed = await _write(uow, rect, change)
        return changed, RectificationExtensionDecided(
            **event_base(changed), approved=command.approve, requested_due_at=changed["extension"]["requested_due_at"],
            decided_by=uow.actor.user_id or "", comment=command.comment,
        ), {"approved": command.approve, "comment": command.comment}

    return await _command(services, caller, command.rectification_id, origin, "decide_extension", step)


# --- reactions (run by event handlers, inside the handler's transaction) ----------------------------------


async def open_rectifications_in(uow: UnitOfWork, released: AuditReleased) -> int:
    """One rectification per open finding of a released audit (the unique finding_id makes it once);
    returns how many were opened."""
    audit = await audit_store.audit(uow.db, released.audit_id, session=uow.session) or {}
    branch = await store.branch_of(uow.db, released.branch_id, uow.session)
    if branch is None:
        log.warning("audit released for an unknown branch", extra={"audit_id": released.audit_id})
        return 0
    checklist = await checklist_store.get_version(uow.db, released.checklist_key, released.checklist_version)
    audit = {
        "checklist_key": released.checklist_key,
        "checklist_version": released.checklist_version,
        "program_id": released.program_id,
        **audit,
    }
    findings = await store.open_findings_of(uow.db, released.audit_id, uow.session)
    services = uow.services
    opened = 0
    for finding in findings:
        doc = workflow.new_rectification(
            finding=finding,
            audit=audit,
            branch=branch,
            checklist=checklist,
            released_at=released.released_at,
            now=uow.now,
            policy=services.reminder_policy,
            eod=services.due_end_of_day,
        )
        if not await store.create_once(uow.db, doc, uow.session):
            continue
        if doc["status"] == rules.OPEN:
            opened += 1
        _emit(uow, doc, RectificationCreated(
            **event_base(doc), item_id=doc["item_id"], severity=doc["severity"], assignee_id=doc["assignee_id"],
            fixed_on_spot=doc["fixed_on_spot"],
        ))
        _trail(uow, "rectification.create", doc,
               {"status": doc["status"], "due_at": doc["due_at"].isoformat(), "severity": doc["severity"]})
    await store.adjust_open_count(uow.db, uow.session, released.audit_id, opened)
    return opened


async def cancel_overturned_in(uow: UnitOfWork, decided: AppealDecided) -> Doc | None:
    """A finding overturned on appeal needs no fix: its rectification is cancelled and stops reminding."""
    if decided.outcome != "overturned":
        return None
    rect = await store.by_finding(uow.db, decided.finding_id, uow.session)
    if rect is None or rect["status"] not in rules.ACTIVE:
        return None
    reason = f"finding overturned on appeal {decided.appeal_id}"
    changed = await _write(uow, rect, workflow.cancelled(rect, _actor(uow), reason, uow.now))
    await store.adjust_open_count(uow.db, uow.session, rect["audit_id"], -1)
    _emit(uow, changed, RectificationCancelled(**event_base(changed), reason=reason))
    _trail(uow, "rectification.cancel", changed, {"reason": reason})
    return changed
