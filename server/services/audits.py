"""Audit commands: start (client UUID, replay-safe), answer in batches (latest answered_at wins),
submit (frozen, scored, findings), release and return. Each decides with server.domain, writes through
server.storage, and emits its events and records its trail entry in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pymongo.errors import DuplicateKeyError

from schemas.audit_events import (
    AuditReleased,
    AuditReturned,
    AuditStarted,
    AuditSubmitted,
    FindingCreated,
    FindingWithdrawn,
)
from schemas.audits import AnswerIn, AuditStart
from schemas.checklist import Checklist
from server.context import ActorInfo, Services, UnitOfWork
from server.db import Doc
from server.domain import access, audit_rules, audit_start
from server.domain import answers as answer_rules
from server.domain.access import Principal
from server.domain.scoring import score_audit
from server.domain.submission import (
    SUBMISSION_FIELDS,
    build_findings,
    returned_changes,
    submit_result,
    submitted_changes,
)
from server.errors import Conflict, Forbidden, InvalidTransition, NotFound, Problem, ValidationFailed, field_error
from server.services import NO_ORIGIN, Origin, actor_of
from server.services import checklists as checklist_service
from server.storage import audits as store
from server.storage import checklists as checklist_store
from server.storage import org, programs

MAX_BATCH = 500
# Batches racing for one audit: each lost race reads it again (one more round trip) and applies what still wins.
ANSWER_ATTEMPTS = 8
SUBMIT_ATTEMPTS = 5


# --- commands -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartAudit:
    audit_id: str  # the phone's UUID: the same start again is a replay
    start: AuditStart


@dataclass(frozen=True)
class AnswerAudit:
    audit_id: str
    answers: list[AnswerIn]


@dataclass(frozen=True)
class ReturnAudit:
    audit_id: str
    comment: str


@dataclass(frozen=True)
class Started:
    audit: Doc
    created: bool  # False: a replay of the start that created it


@dataclass(frozen=True)
class Answered:
    audit: Doc
    applied: int
    progress: audit_rules.Progress


# --- look-ups shared by the commands and the readers ----------------------------------------------


async def visible_audit(services: Services, who: Principal, audit_id: str) -> Doc:
    """The audit if the caller may know it exists, else 404."""
    doc = await store.audit(services.db, audit_id)
    if doc is None or not access.can_view_audit(who, doc):
        raise NotFound("Audit not found")
    return doc


async def own_audit(services: Services, who: Principal, audit_id: str) -> Doc:
    doc = await store.audit(services.db, audit_id)
    if doc is None or doc.get("auditor_id") != who.user_id:
        raise NotFound("Audit not found")
    return doc


async def pinned_checklist(services: Services, audit: Doc) -> Checklist:
    """The checklist version the audit answers (versions never change once published)."""
    checklist = await checklist_store.get_version(services.db, audit["checklist_key"], audit["checklist_version"])
    if checklist is None:
        raise Conflict(f"Checklist {audit['checklist_key']} v{audit['checklist_version']} is not available")
    return checklist


def audit_progress(checklist: Checklist, audit: Doc, photos: dict[str, list[str]]) -> audit_rules.Progress:
    return audit_rules.progress(
        checklist,
        audit_rules.answers_of(audit.get("answers")),
        {k: len(v) for k, v in photos.items()},
        branch_type=audit.get("branch_type"),
        channel=audit.get("channel"),
    )


def emit_audit_event(uow: UnitOfWork, audit: Doc, payload: BaseModel) -> str:
    """An event about the audit itself, filterable by its branch and region; returns its id."""
    return uow.emit(payload, subject_type="audit", subject_id=audit["_id"], branch_id=audit["branch_id"],
                    region_id=audit["region_id"])


def emit_finding_event(uow: UnitOfWork, audit: Doc, finding: Doc, payload: BaseModel) -> None:
    """An event about one finding of the audit, filterable by the audit, its branch and region."""
    uow.emit(payload, subject_type="finding", subject_id=finding["_id"], audit_id=audit["_id"],
             branch_id=audit["branch_id"], region_id=audit["region_id"])


async def _set_assignment(uow: UnitOfWork, audit: Doc, audit_status: str) -> None:
    """An assignment's status follows its audit's."""
    if audit.get("assignment_id"):
        status = audit_rules.ASSIGNMENT_STATUS_FOR[audit_status]
        await programs.set_assignment_status(uow.db, audit["assignment_id"], status, uow.session)


# --- start ----------------------------------------------------------------------------------------


async def start_audit(services: Services, caller: Principal, command: StartAudit, *,
                      origin: Origin = NO_ORIGIN) -> Started:
    """Start an audit under the phone's UUID; the same start again returns the audit it created."""
    access.require_role(caller, access.FIELD_ROLES)
    request_doc = command.start.model_dump(mode="json", exclude_none=True)
    # Not looked up first: a first start (nearly every one) then costs no read of an audit that is not there.
    # A replay is recognised by the insert's duplicate key, or, when the start would now be refused (its
    # assignment taken by it, its checklist retired since), by the audit found under its id.
    try:
        doc = await _new_audit(services, caller, command, request_doc)
    except Problem:
        existing = await store.audit(services.db, command.audit_id)
        if existing is None:
            raise
        return _replayed_start(caller, existing, request_doc)

    async def work(uow: UnitOfWork) -> None:
        await store.insert_audit(uow.db, doc, uow.session)
        if doc["assignment_id"] and not await store.take_assignment(
            uow.db, doc["assignment_id"], doc["_id"], uow.session
        ):
            raise Conflict("This assignment's audit was already started")
        emit_audit_event(uow, doc, AuditStarted(
            audit_id=doc["_id"], branch_id=doc["branch_id"], checklist_key=doc["checklist_key"],
            checklist_version=doc["checklist_version"],
        ))
        uow.record(
            "audit.start",
            "audit",
            doc["_id"],
            {"checklist": f"{doc['checklist_key']}@{doc['checklist_version']}", "flags": doc["flags"]},
            branch_id=doc["branch_id"],
            assignment_id=doc.get("assignment_id"),
        )

    try:
        await services.transact(actor_of(caller, origin), work)
    except DuplicateKeyError:
        raced = await store.audit(services.db, command.audit_id)
        if raced is None:
            raise
        return _replayed_start(caller, raced, request_doc)
    return Started(doc, created=True)


def _replayed_start(caller: Principal, existing: Doc, request_doc: dict[str, Any]) -> Started:
    if not audit_start.same_start(existing, caller, request_doc):
        raise Conflict("An audit with this id was started with a different request")
    return Started(existing, created=False)


async def _new_audit(services: Services, who: Principal, command: StartAudit, request_doc: dict[str, Any]) -> Doc:
    body = command.start
    assignment: Doc | None = None
    if body.assignment_id:
        assignment = await programs.assignment(services.db, body.assignment_id)
        if assignment is None:
            raise ValidationFailed(
                "Unknown assignment", errors=[field_error(["body", "assignment_id"], "no such assignment")]
            )
        audit_start.check_assignment(assignment, who, body)
    branch = await org.branch(services.db, str(assignment["branch_id"] if assignment else body.branch_id))
    if branch is None:
        raise ValidationFailed("Unknown branch", errors=[field_error(["body", "branch_id"], "no such branch")])
    if assignment is None and who.home_branch_id == branch["_id"]:
        raise Forbidden("Nobody audits their own home branch")
    checklist, version = await _checklist_to_pin(services, body)
    return audit_start.new_audit(
        command.audit_id,
        who=who,
        body=body,
        request_doc=request_doc,
        branch=branch,
        assignment=assignment,
        checklist_channel=checklist.channel,
        checklist_version=version,
        now=services.clock.now(),
    )


async def _checklist_to_pin(services: Services, body: AuditStart) -> tuple[Checklist, int]:
    """The current version, or the published version the phone started on while offline (it may have been
    superseded since: the audit keeps the version its answers were given against). A retired checklist starts
    nothing new; audits already started on it finish normally, as they never come here again."""
    pointer = await checklist_store.pointer(services.db, body.checklist_key)  # read once: retired, and current
    if checklist_service.is_retired(pointer):
        await checklist_service.ensure_not_retired(services, body.checklist_key)  # its 422, read again (rare)
    if body.checklist_version is not None:
        pinned = await checklist_store.get_version(services.db, body.checklist_key, body.checklist_version)
        if pinned is None:
            raise ValidationFailed(
                "Unknown checklist version",
                errors=[field_error(["body", "checklist_version"], "not a published version of this checklist")],
            )
        return pinned, body.checklist_version
    version = int(pointer["current_version"]) if pointer is not None else None
    current = None if version is None else await checklist_store.get_version(services.db, body.checklist_key, version)
    if current is None or version is None:
        raise ValidationFailed(
            "Unknown checklist", errors=[field_error(["body", "checklist_key"], "no published checklist")]
        )
    return current, version


# --- answers --------------------------------------------------------------------------------------


async def answer_audit(services: Services, caller: Principal, command: AnswerAudit, *,
                       origin: Origin = NO_ORIGIN) -> Answered:
    """Store a batch of answers: per item the later answered_at wins, whatever the arrival order."""
    audit = await own_audit(services, caller, command.audit_id)
    if len(command.answers) > MAX_BATCH:
        raise ValidationFailed(
            f"At most {MAX_BATCH} answers per batch", errors=[field_error(["body"], "batch too large")]
        )
    audit_rules.next_status(audit["status"], "answer")
    checklist = await pinned_checklist(services, audit)
    answers, clock_flags = answer_rules.with_trusted_times(
        [a.model_dump() for a in command.answers],
        received_at=services.clock.now(),
        started_at=audit.get("started_at"),
    )
    errors = audit_rules.validate_answers(checklist, answers, may_fix_on_spot=caller.role == access.INSPECTOR)
    if errors:
        raise ValidationFailed(f"{len(errors)} answers do not fit the checklist", errors=errors)
    newest = answer_rules.newest_per_item(answers)
    applied = 0
    for _ in range(ANSWER_ATTEMPTS):
        audit_rules.next_status(audit["status"], "answer")  # 409 once submitted meanwhile
        # Only answers newer than what was just read can still win; none (a replayed batch) writes nothing.
        candidates = answer_rules.newer_than_stored(audit.get("answers"), newest)
        if not candidates:
            break
        outcome = await _store_answers(
            services, actor_of(caller, origin), audit, candidates, received=len(answers), flags=clock_flags
        )
        if outcome is not None:
            audit, applied = outcome
            break
        audit = await own_audit(services, caller, command.audit_id)  # another batch came first: read again
    else:
        raise Conflict("The audit changed while answering; retry")
    photos = await store.photos_by_item(services.db, audit["_id"])
    return Answered(audit, applied, audit_progress(checklist, audit, photos))


async def _store_answers(
    services: Services,
    actor: ActorInfo,
    audit: Doc,
    candidates: dict[str, dict[str, Any]],
    *,
    received: int,
    flags: set[str],
) -> tuple[Doc, int] | None:
    """Store the answers in one conditional update of the audit as read; the audit as it left and how many
    answers changed, or None when it changed since it was read (nothing stored)."""
    answers_rev = int(audit.get("answers_rev", 0))

    async def work(uow: UnitOfWork) -> tuple[Doc, int] | None:
        stored = {item_id: answer_rules.stored_answer(a, uow.now) for item_id, a in candidates.items()}
        if not await store.apply_answers(
            uow.db, audit["_id"], stored, uow.now, list(audit_rules.ANSWERABLE), answers_rev, uow.session,
            flags=sorted(flags),
        ):
            return None
        after, applied = answer_rules.after_batch(audit, stored, uow.now)
        if flags:
            after["flags"] = sorted({*after.get("flags", []), *flags})
        if applied:
            summary: dict[str, Any] = {"received": received, "applied": applied}
            if flags:
                summary["clock_flags"] = sorted(flags)
            uow.record("audit.answer", "audit", audit["_id"], summary, branch_id=audit["branch_id"])
        return after, applied

    return await services.transact(actor, work)


# --- submit ---------------------------------------------------------------------------------------


async def submit_audit(services: Services, caller: Principal, audit_id: str, *,
                       origin: Origin = NO_ORIGIN) -> Doc:
    """Score and freeze the audit (422 naming each missing answer or photo until it is complete); a
    submitted audit's submit again answers its result. Returns the audit as submitted."""
    for _ in range(SUBMIT_ATTEMPTS):
        audit = await own_audit(services, caller, audit_id)
        if audit["status"] in audit_rules.SUBMITTED:
            return audit
        submitted = await _try_submit(services, caller, origin, audit)
        if submitted is not None:
            return submitted
    raise Conflict("Answers kept arriving while submitting; retry")


async def _try_submit(services: Services, caller: Principal, origin: Origin, audit: Doc) -> Doc | None:
    """Score and freeze the audit as read; None when answers arrived meanwhile (read again and retry)."""
    status = audit_rules.next_status(audit["status"], "submit")
    checklist = await pinned_checklist(services, audit)
    photos = await store.photos_by_item(services.db, audit["_id"])
    progress = audit_progress(checklist, audit, photos)
    if not progress.complete:
        errors = [
            field_error(["answers", item_id], "required item is not answered") for item_id in progress.missing_items
        ]
        errors += [field_error(["photos", item_id], "required photo is missing") for item_id in progress.missing_photos]
        raise ValidationFailed(
            f"{len(errors)} required answers or photos are missing",
            errors=errors,
            extra={"progress": progress.as_dict()},
        )
    now = services.clock.now()
    scored = score_audit(
        checklist,
        audit_rules.answers_of(audit.get("answers")),
        branch_type=audit.get("branch_type"),
        channel=audit.get("channel"),
    )
    submission = int(audit.get("submissions", 0)) + 1
    findings = build_findings(audit, checklist, scored, photos, now, submission)
    changes = submitted_changes(scored, findings, now, submission, status=status)
    answers_rev = int(audit.get("answers_rev", 0))

    async def work(uow: UnitOfWork) -> bool:
        if not await store.freeze_submitted(
            uow.db, audit["_id"], answers_rev, changes, list(audit_rules.ANSWERABLE), uow.session
        ):
            return False
        await store.insert_findings(uow.db, findings, uow.session)
        await _set_assignment(uow, audit, status)
        _emit_submitted(uow, audit, changes, findings)
        uow.record(
            "audit.submit",
            "audit",
            audit["_id"],
            {
                "score": scored.score,
                "grade": scored.grade,
                "critical_failed": scored.critical_failed,
                "findings": len(findings),
                "rules_version": scored.rules_version,
            },
            branch_id=audit["branch_id"],
        )
        return True

    if not await services.transact(actor_of(caller, origin), work):
        return None
    return {**audit, **changes}


def _emit_submitted(uow: UnitOfWork, audit: Doc, changes: dict[str, Any], findings: list[Doc]) -> None:
    """audit.submitted, then finding.created for each finding."""
    emit_audit_event(uow, audit, AuditSubmitted(
        audit_id=audit["_id"], branch_id=audit["branch_id"], region_id=audit["region_id"], score=changes["score"],
        grade=changes["grade"], critical_failed=changes["critical_failed"], finding_ids=[f["_id"] for f in findings],
    ))
    for f in findings:
        emit_finding_event(uow, audit, f, FindingCreated(
            finding_id=f["_id"], audit_id=audit["_id"], branch_id=audit["branch_id"], item_id=f["item_id"],
            severity=f["severity"], fixed_on_spot=f["fixed_on_spot"],
        ))


# --- review ---------------------------------------------------------------------------------------


async def release_audit(services: Services, caller: Principal, audit_id: str, *,
                        origin: Origin = NO_ORIGIN) -> Doc:
    """Release a submitted audit to its branch; its findings become rectification work."""
    access.require_role(caller, access.REVIEWERS)
    audit = await visible_audit(services, caller, audit_id)
    status = audit_rules.next_status(audit["status"], "release")

    async def work(uow: UnitOfWork) -> Doc:
        now = uow.now
        changes = {"status": status, "released_at": now, "updated_at": now}
        if not await store.transition(uow.db, audit["_id"], audit["status"], changes, uow.session):
            raise InvalidTransition("The audit is no longer submitted")
        await store.release_findings(uow.db, audit["_id"], now, uow.session)
        await _set_assignment(uow, audit, status)
        open_ids = [f["id"] for f in (audit.get("result") or {}).get("findings", [])]
        emit_audit_event(uow, audit, AuditReleased(
            audit_id=audit["_id"], branch_id=audit["branch_id"], region_id=audit["region_id"],
            program_id=audit.get("program_id"), checklist_key=audit["checklist_key"],
            checklist_version=audit["checklist_version"], score=audit.get("score"), grade=audit.get("grade"),
            critical_failed=bool(audit.get("critical_failed")), finding_ids=open_ids, released_at=now,
        ))
        uow.record("audit.release", "audit", audit["_id"], {"findings": len(open_ids)}, branch_id=audit["branch_id"])
        return {**audit, **changes}

    return await services.transact(actor_of(caller, origin), work)


async def return_audit(services: Services, caller: Principal, command: ReturnAudit, *,
                       origin: Origin = NO_ORIGIN) -> Doc:
    """Send a submitted audit back to its auditor with a comment; its findings are withdrawn."""
    access.require_role(caller, access.REVIEWERS)
    audit = await visible_audit(services, caller, command.audit_id)
    status = audit_rules.next_status(audit["status"], "return")

    async def work(uow: UnitOfWork) -> Doc:
        changes = returned_changes(command.comment, uow.now, status=status)
        unset = list(SUBMISSION_FIELDS)
        if not await store.transition(uow.db, audit["_id"], audit["status"], changes, uow.session, unset=unset):
            raise InvalidTransition("The audit is no longer submitted")
        # Findings belong to a submission; the next submission derives them afresh. Each withdrawal is an event,
        # so the feed never keeps a finding.created for a finding that no longer exists.
        withdrawn = await store.findings_of(uow.db, audit["_id"], session=uow.session)
        await store.delete_findings(uow.db, audit["_id"], uow.session)
        for finding in withdrawn:
            emit_finding_event(uow, audit, finding, FindingWithdrawn(
                finding_id=finding["_id"], audit_id=audit["_id"], branch_id=audit["branch_id"],
                item_id=finding["item_id"],
            ))
        await _set_assignment(uow, audit, status)
        emit_audit_event(
            uow, audit, AuditReturned(audit_id=audit["_id"], branch_id=audit["branch_id"], comment=command.comment)
        )
        uow.record("audit.return", "audit", audit["_id"], {"comment": command.comment}, branch_id=audit["branch_id"])
        return {key: value for key, value in {**audit, **changes}.items() if key not in SUBMISSION_FIELDS}

    return await services.transact(actor_of(caller, origin), work)


__all__ = [
    "AnswerAudit",
    "Answered",
    "ReturnAudit",
    "StartAudit",
    "Started",
    "answer_audit",
    "audit_progress",
    "own_audit",
    "pinned_checklist",
    "release_audit",
    "return_audit",
    "start_audit",
    "submit_audit",
    "submit_result",
    "visible_audit",
]
