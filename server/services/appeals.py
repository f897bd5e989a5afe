"""Appeal commands: a branch head appeals a finding of a released audit within the appeal window;
compliance upholds or overturns it, and an overturned finding re-scores the audit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel

from schemas.audit_events import AppealDecided, AppealFiled, AuditRescored
from schemas.checklist import Checklist
from server.context import Services, UnitOfWork
from server.db import Doc
from server.domain import access
from server.domain.access import Principal
from server.domain.scoring import ScoreResult
from server.domain.submission import finding_counts, rescored
from server.errors import Conflict, InvalidTransition, NotFound, ValidationFailed, field_error
from server.photos import owners
from server.services import NO_ORIGIN, Origin, actor_of, found
from server.services.audits import emit_audit_event, pinned_checklist
from server.storage import appeals as appeal_store
from server.storage import audits as store


@dataclass(frozen=True)
class FileAppeal:
    finding_id: str
    reason: str
    photo_ids: list[str] = field(default_factory=list)
    idempotency_key: str | None = None  # the same key again answers the appeal it filed


@dataclass(frozen=True)
class DecideAppeal:
    appeal_id: str
    outcome: Literal["upheld", "overturned"]
    comment: str


@dataclass(frozen=True)
class Filed:
    appeal: Doc
    created: bool


def appeal_until(finding: Doc, window_days: int) -> datetime | None:
    """When the appeal window of a released finding closes (None before release)."""
    released_at = finding.get("released_at")
    return released_at + timedelta(days=window_days) if isinstance(released_at, datetime) else None


def new_appeal(finding: Doc, command: FileAppeal, filed_by: str, now: datetime) -> Doc:
    """The one constructor of a stored appeal."""
    return {
        "_id": str(uuid.uuid4()),
        "finding_id": finding["_id"],
        "audit_id": finding["audit_id"],
        "branch_id": finding["branch_id"],
        "region_id": finding["region_id"],
        "reason": command.reason,
        "photo_ids": list(command.photo_ids),
        "status": "pending",
        "filed_by": filed_by,
        "filed_at": now,
        "idempotency_key": command.idempotency_key,
    }


def _write_down(uow: UnitOfWork, appeal: Doc, payload: BaseModel, action: str, summary: dict[str, Any]) -> None:
    """An appeal's event and its trail entry, both findable by its finding and audit."""
    ids = {"finding_id": appeal["finding_id"], "audit_id": appeal["audit_id"]}
    uow.emit(payload, subject_type="appeal", subject_id=appeal["_id"], branch_id=appeal["branch_id"],
             region_id=appeal["region_id"], **ids)
    uow.record(action, "appeal", appeal["_id"], summary, **ids)


def _ensure_appealable(services: Services, finding: Doc, now: datetime) -> None:
    """An open finding, not already under appeal, within its appeal window."""
    if finding["status"] != "open":
        raise InvalidTransition("The finding is no longer open")
    if finding.get("pending_appeal_id"):
        raise Conflict("This finding already has a pending appeal", extra={"appeal_id": finding["pending_appeal_id"]})
    until = appeal_until(finding, services.settings.appeal_window_days)
    if until is None or now > until:
        raise Conflict(f"Appeals close {services.settings.appeal_window_days} days after release")


async def appeal_evidence_owner(services: Services, caller: Principal, finding_id: str) -> owners.Owner:
    """Where a photo for an appeal goes: the finding, while its branch head may still appeal it (checked
    before the upload's bytes are read, and again when the photo is recorded)."""
    finding = await store.finding(services.db, finding_id)
    if finding is None or not access.can_appeal(caller, finding):
        raise NotFound("Finding not found")
    _ensure_appealable(services, finding, services.clock.now())
    return await owners.appeal_owner(services.db, finding)


async def file_appeal(services: Services, caller: Principal, command: FileAppeal, *,
                      origin: Origin = NO_ORIGIN) -> Filed:
    """Appeal a finding of the caller's branch while its window is open (one pending appeal per finding)."""
    db = services.db
    finding = await store.finding(db, command.finding_id)
    if finding is None or not access.can_appeal(caller, finding):
        raise NotFound("Finding not found")
    if command.idempotency_key:
        earlier = await store.appeal_by_key(db, caller.user_id, command.idempotency_key)
        if earlier is not None:
            if earlier["finding_id"] != command.finding_id or earlier["reason"] != command.reason:
                raise Conflict("This Idempotency-Key was used for another appeal")
            return Filed(earlier, created=False)
    now = services.clock.now()
    _ensure_appealable(services, finding, now)
    if command.photo_ids and not await appeal_store.photos_for_appeal(
        db, command.photo_ids, finding["_id"], caller.user_id
    ):
        raise ValidationFailed(
            "Unknown photos",
            errors=[field_error(["body", "photo_ids"], "not photos you uploaded for an appeal of this finding")],
        )
    appeal = new_appeal(finding, command, caller.user_id, now)

    async def work(uow: UnitOfWork) -> None:
        if not await appeal_store.claim_finding(uow.db, finding["_id"], appeal["_id"], uow.session):
            raise Conflict("This finding already has a pending appeal")
        await appeal_store.insert_appeal(uow.db, appeal, uow.session)
        _write_down(uow, appeal, AppealFiled(
            appeal_id=appeal["_id"], finding_id=finding["_id"], audit_id=finding["audit_id"],
            branch_id=finding["branch_id"],
        ), "appeal.file", {"finding_id": finding["_id"]})

    await services.transact(actor_of(caller, origin), work)
    return Filed(appeal, created=True)


async def pending_appeal(services: Services, caller: Principal, appeal_id: str) -> tuple[Doc, Doc, Checklist]:
    """A pending appeal a reviewer may decide, its audit and the checklist version that audit was scored on."""
    access.require_role(caller, access.REVIEWERS)
    appeal = found(await store.appeal(services.db, appeal_id), "Appeal")
    if appeal["status"] != "pending":
        raise InvalidTransition(f"The appeal is already {appeal['status']}")
    audit = found(await store.audit(services.db, appeal["audit_id"]), "Audit")
    return appeal, audit, await pinned_checklist(services, audit)


async def decide_appeal(services: Services, caller: Principal, command: DecideAppeal, *,
                        origin: Origin = NO_ORIGIN) -> Doc:
    """Uphold or overturn a pending appeal; overturning re-scores the audit with its own rules version."""
    appeal, audit, checklist = await pending_appeal(services, caller, command.appeal_id)
    overturned = command.outcome == "overturned"

    async def work(uow: UnitOfWork) -> Doc:
        decided = {
            "status": command.outcome,
            "decided_by": uow.actor.user_id,
            "decided_at": uow.now,
            "comment": command.comment,
        }
        if not await appeal_store.decide(uow.db, appeal["_id"], decided, uow.session):
            raise InvalidTransition("The appeal was decided meanwhile")
        await appeal_store.settle_finding(uow.db, appeal["finding_id"], overturned, uow.now, uow.session)
        if overturned:
            await _rescore(uow, audit["_id"], checklist, appeal)
        _write_down(uow, appeal, AppealDecided(
            appeal_id=appeal["_id"], finding_id=appeal["finding_id"], audit_id=appeal["audit_id"],
            branch_id=appeal["branch_id"], outcome=command.outcome,
        ), "appeal.decide", {"outcome": command.outcome, "comment": command.comment})
        return {**appeal, **decided}

    return await services.transact(actor_of(caller, origin), work)


async def _rescore(uow: UnitOfWork, audit_id: str, checklist: Checklist, appeal: Doc) -> None:
    """Score the audit again with its own rules version, overturned findings counting as passed."""
    audit = found(await store.audit(uow.db, audit_id, session=uow.session), "Audit")
    findings = await store.findings_of(uow.db, audit_id, session=uow.session)
    scored = rescored(checklist, audit, {f["item_id"] for f in findings if f["status"] == "overturned"})
    await rescore_in(uow, audit, scored, findings, f"appeal {appeal['_id']} overturned finding {appeal['finding_id']}")


async def rescore_in(uow: UnitOfWork, audit: Doc, scored: ScoreResult, findings: list[Doc], reason: str) -> str:
    """Store the audit's new score (its findings counted as they stand now) and tell of it with
    audit.rescored; returns the event's id."""
    result: dict[str, Any] = scored.model_dump(mode="json")
    result["findings"] = (audit.get("result") or {}).get("findings", [])
    await appeal_store.rescore_audit(
        uow.db,
        audit["_id"],
        {
            "result": result,
            "score": scored.score,
            "grade": scored.grade,
            "critical_failed": scored.critical_failed,
            "finding_counts": finding_counts(findings),
            "rescored_at": uow.now,
            "updated_at": uow.now,
        },
        uow.session,
    )
    return emit_audit_event(uow, audit, AuditRescored(
        audit_id=audit["_id"], branch_id=audit["branch_id"], old_score=audit.get("score"), new_score=scored.score,
        old_grade=audit.get("grade"), new_grade=scored.grade, reason=reason,
    ))
