"""Audits from phones: start (client UUID, replay-safe), answer in batches (latest answered_at wins),
submit (frozen, scored, findings), review (release or return), detail and history. Handlers parse,
authorize, call server.domain and server.storage, and respond."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from pymongo.errors import DuplicateKeyError

from schemas.audit_events import (
    AuditReleased,
    AuditReturned,
    AuditStarted,
    AuditSubmitted,
    FindingCreated,
    FindingWithdrawn,
)
from schemas.audits import (
    AnswerBatch,
    AnswersResult,
    AuditList,
    AuditPublic,
    AuditQuery,
    AuditStart,
    ReturnRequest,
    SubmitResult,
)
from schemas.checklist import Checklist
from server.context import Services, UnitOfWork
from server.db import Doc
from server.domain import answers as answer_rules
from server.domain import audit_access, audit_rules, audit_start
from server.domain.scoring import score_audit
from server.domain.submission import (
    SUBMISSION_FIELDS,
    build_findings,
    finding_counts,
    returned_changes,
    submit_result,
    submitted_changes,
)
from server.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed, field_error
from server.http import authz
from server.http.api import ApiRouter, body_of, json_response, match_info, query_of
from server.http.request_meta import actor
from server.keys import SERVICES
from server.storage import audits as store
from server.storage import checklists as checklist_store
from server.storage import org, programs

# Other route modules import these from here.
__all__ = ["current_checklist", "finding_counts", "history_filters", "pinned_checklist", "router"]

router = ApiRouter("audits")
FIELD = authz.FIELD_ROLES
REVIEWERS = frozenset({authz.COMPLIANCE, authz.ADMIN})
MAX_BATCH = 500
SUBMIT_ATTEMPTS = 5


# --- shared look-ups ------------------------------------------------------------------------------


async def load_version(services: Services, key: str, version: int) -> Checklist | None:
    """A published checklist version (cached in-process: versions never change)."""
    return await checklist_store.get_version(services.db, key, version)


async def current_checklist(services: Services, key: str) -> tuple[Checklist, int] | None:
    """The checklist version a new audit of `key` pins, and its number."""
    return await checklist_store.get_current(services.db, key)


def pseudonym_key(services: Services) -> bytes:
    key: bytes | None = services.extras.get("pseudonym_key")
    if key is None:
        key = audit_access.pseudonym_key(services.jwt_secret)
        services.extras["pseudonym_key"] = key
    return key


async def visible_audit(services: Services, who: authz.Principal, audit_id: str) -> Doc:
    """The audit if the caller may know it exists, else 404."""
    doc = await store.audit(services.db, audit_id)
    if doc is None or not audit_access.can_view_audit(who, doc):
        raise NotFound("Audit not found")
    return doc


async def own_audit(services: Services, who: authz.Principal, audit_id: str) -> Doc:
    doc = await store.audit(services.db, audit_id)
    if doc is None or doc.get("auditor_id") != who.user_id:
        raise NotFound("Audit not found")
    return doc


async def pinned_checklist(services: Services, audit: Doc) -> Checklist:
    checklist = await load_version(services, audit["checklist_key"], audit["checklist_version"])
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


def _detail(services: Services, who: authz.Principal, audit: Doc) -> dict[str, Any]:
    view = audit_access.audit_detail(who, audit, pseudonym_key(services))
    return AuditPublic.model_validate(view).model_dump(mode="json", exclude_none=True)


# --- start ----------------------------------------------------------------------------------------


@router.put(
    "/api/v1/audits/{audit_id}",
    summary="Start an audit (client UUID; the same body again is 200)",
    body=AuditStart,
    response=AuditPublic,
    status=201,
    roles=FIELD,
    extra_responses={200: "Replayed start: the existing audit", 409: "The id is taken by another start"},
)
async def start_audit(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = authz.principal(request)
    try:
        audit_id = str(uuid.UUID(match_info(request, "audit_id")))
    except ValueError:
        raise ValidationFailed(
            "audit_id must be a UUID", errors=[field_error(["path", "audit_id"], "not a UUID")]
        ) from None
    body = await body_of(request, AuditStart)
    request_doc = body.model_dump(mode="json")
    existing = await store.audit(services.db, audit_id)
    if existing is not None:
        return _replayed_start(services, who, existing, request_doc)
    doc = await _new_audit(services, who, audit_id, body, request_doc)

    async def work(uow: UnitOfWork) -> None:
        await store.insert_audit(uow.db, doc, uow.session)
        if doc["assignment_id"] and not await store.take_assignment(
            uow.db, doc["assignment_id"], audit_id, uow.session
        ):
            raise Conflict("This assignment's audit was already started")
        uow.emit(
            AuditStarted(
                audit_id=audit_id,
                branch_id=doc["branch_id"],
                checklist_key=doc["checklist_key"],
                checklist_version=doc["checklist_version"],
            ),
            subject_type="audit",
            subject_id=audit_id,
            branch_id=doc["branch_id"],
            region_id=doc["region_id"],
        )
        uow.record(
            "audit.start",
            "audit",
            audit_id,
            {"checklist": f"{doc['checklist_key']}@{doc['checklist_version']}", "flags": doc["flags"]},
            branch_id=doc["branch_id"],
            assignment_id=doc.get("assignment_id"),
        )

    try:
        await services.transact(actor(request), work)
    except DuplicateKeyError:
        raced = await store.audit(services.db, audit_id)
        if raced is None:
            raise
        return _replayed_start(services, who, raced, request_doc)
    return json_response(_detail(services, who, doc), status=201)


def _replayed_start(
    services: Services, who: authz.Principal, existing: Doc, request_doc: dict[str, Any]
) -> web.Response:
    if not audit_start.same_start(existing, who, request_doc):
        raise Conflict("An audit with this id was started with a different request")
    return json_response(_detail(services, who, existing), status=200)


async def _new_audit(
    services: Services, who: authz.Principal, audit_id: str, body: AuditStart, request_doc: dict[str, Any]
) -> Doc:
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
    current = await current_checklist(services, body.checklist_key)
    if current is None:
        raise ValidationFailed(
            "Unknown checklist", errors=[field_error(["body", "checklist_key"], "no published checklist")]
        )
    checklist, version = current
    return audit_start.new_audit(
        audit_id,
        who=who,
        body=body,
        request_doc=request_doc,
        branch=branch,
        assignment=assignment,
        checklist_channel=checklist.channel,
        checklist_version=version,
        now=services.clock.now(),
    )


# --- answers --------------------------------------------------------------------------------------


@router.patch(
    "/api/v1/audits/{audit_id}/answers",
    summary="Store a batch of answers (latest answered_at wins)",
    body=AnswerBatch,
    response=AnswersResult,
    roles=FIELD,
    extra_responses={409: "The audit is submitted", 422: "An answer does not fit its item"},
)
async def answer_audit(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = authz.principal(request)
    audit = await own_audit(services, who, match_info(request, "audit_id"))
    batch = (await body_of(request, AnswerBatch)).root
    if len(batch) > MAX_BATCH:
        raise ValidationFailed(
            f"At most {MAX_BATCH} answers per batch", errors=[field_error(["body"], "batch too large")]
        )
    audit_rules.next_status(audit["status"], "answer")
    checklist = await pinned_checklist(services, audit)
    answers = [a.model_dump() for a in batch]
    errors = audit_rules.validate_answers(checklist, answers, may_fix_on_spot=who.role == authz.INSPECTOR)
    if errors:
        raise ValidationFailed(f"{len(errors)} answers do not fit the checklist", errors=errors)
    # Only answers newer than what was just read can still win; none (a replayed batch) writes nothing.
    candidates = answer_rules.newer_than_stored(audit.get("answers"), answer_rules.newest_per_item(answers))
    applied = 0
    if candidates:
        audit, applied = await _store_answers(request, services, audit, candidates, received=len(answers))
    photos = await store.photos_by_item(services.db, audit["_id"])
    result = {
        "audit_id": audit["_id"],
        "status": audit["status"],
        "applied": applied,
        "progress": audit_progress(checklist, audit, photos).as_dict(),
    }
    return json_response(AnswersResult.model_validate(result))


async def _store_answers(
    request: web.Request, services: Services, audit: Doc, candidates: dict[str, dict[str, Any]], *, received: int
) -> tuple[Doc, int]:
    """Store the answers in one conditional update; the audit as it left and how many answers changed."""

    async def work(uow: UnitOfWork) -> tuple[Doc, int] | None:
        stored = {item_id: answer_rules.stored_answer(a, uow.now) for item_id, a in candidates.items()}
        before = await store.apply_answers(
            uow.db, audit["_id"], stored, uow.now, list(audit_rules.ANSWERABLE), uow.session
        )
        if before is None:
            return None
        after, applied = answer_rules.after_batch(before, stored, uow.now)
        if applied:
            uow.record(
                "audit.answer",
                "audit",
                audit["_id"],
                {"received": received, "applied": applied},
                branch_id=audit["branch_id"],
            )
        return after, applied

    outcome = await services.transact(actor(request), work)
    if outcome is None:  # submitted meanwhile: 409
        fresh = await store.audit(services.db, audit["_id"])
        if fresh is None:
            raise NotFound("Audit not found")
        audit_rules.next_status(fresh["status"], "answer")
        raise Conflict("The audit changed while answering; retry")
    return outcome


# --- submit ---------------------------------------------------------------------------------------


@router.post(
    "/api/v1/audits/{audit_id}/submit",
    summary="Submit: 422 until complete; then frozen and scored",
    response=SubmitResult,
    roles=FIELD,
    extra_responses={422: "Missing answers or photos, one error per item", 409: "Not submittable"},
)
async def submit_audit(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = authz.principal(request)
    audit_id = match_info(request, "audit_id")
    for _ in range(SUBMIT_ATTEMPTS):
        audit = await own_audit(services, who, audit_id)
        if audit["status"] in audit_rules.SUBMITTED:
            return json_response(SubmitResult.model_validate(submit_result(audit)))
        outcome = await _try_submit(request, services, audit)
        if outcome is not None:
            return json_response(SubmitResult.model_validate(outcome))
    raise Conflict("Answers kept arriving while submitting; retry")


async def _try_submit(request: web.Request, services: Services, audit: Doc) -> dict[str, Any] | None:
    """Score and freeze the audit as read; None when answers arrived meanwhile (read again and retry)."""
    audit_rules.next_status(audit["status"], "submit")
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
    changes = submitted_changes(scored, findings, now, submission)
    answers_rev = int(audit.get("answers_rev", 0))

    async def work(uow: UnitOfWork) -> bool:
        if not await store.freeze_submitted(
            uow.db, audit["_id"], answers_rev, changes, list(audit_rules.ANSWERABLE), uow.session
        ):
            return False
        await store.insert_findings(uow.db, findings, uow.session)
        if audit.get("assignment_id"):
            await programs.set_assignment_status(uow.db, audit["assignment_id"], "submitted", uow.session)
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

    if not await services.transact(actor(request), work):
        return None
    return submit_result({**audit, **changes})


def _emit_submitted(uow: UnitOfWork, audit: Doc, changes: dict[str, Any], findings: list[Doc]) -> None:
    """audit.submitted, then finding.created for each finding."""
    ids = {"branch_id": audit["branch_id"], "region_id": audit["region_id"]}
    uow.emit(
        AuditSubmitted(
            audit_id=audit["_id"],
            branch_id=audit["branch_id"],
            region_id=audit["region_id"],
            score=changes["score"],
            grade=changes["grade"],
            critical_failed=changes["critical_failed"],
            finding_ids=[f["_id"] for f in findings],
        ),
        subject_type="audit",
        subject_id=audit["_id"],
        **ids,
    )
    for f in findings:
        uow.emit(
            FindingCreated(
                finding_id=f["_id"],
                audit_id=audit["_id"],
                branch_id=audit["branch_id"],
                item_id=f["item_id"],
                severity=f["severity"],
                fixed_on_spot=f["fixed_on_spot"],
            ),
            subject_type="finding",
            subject_id=f["_id"],
            audit_id=audit["_id"],
            **ids,
        )


# --- review ---------------------------------------------------------------------------------------


@router.post(
    "/api/v1/audits/{audit_id}/release",
    summary="Release a submitted audit to the branch",
    response=SubmitResult,
    roles=REVIEWERS,
    extra_responses={409: "Not submitted"},
)
async def release_audit(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    audit = await visible_audit(services, authz.principal(request), match_info(request, "audit_id"))
    audit_rules.next_status(audit["status"], "release")

    async def work(uow: UnitOfWork) -> Doc:
        now = uow.now
        changes = {"status": "released", "released_at": now, "updated_at": now}
        if not await store.transition(uow.db, audit["_id"], "submitted", changes, uow.session):
            raise InvalidTransition("The audit is no longer submitted")
        await store.release_findings(uow.db, audit["_id"], now, uow.session)
        if audit.get("assignment_id"):
            await programs.set_assignment_status(uow.db, audit["assignment_id"], "released", uow.session)
        open_ids = [f["id"] for f in (audit.get("result") or {}).get("findings", [])]
        uow.emit(
            AuditReleased(
                audit_id=audit["_id"],
                branch_id=audit["branch_id"],
                region_id=audit["region_id"],
                program_id=audit.get("program_id"),
                checklist_key=audit["checklist_key"],
                checklist_version=audit["checklist_version"],
                score=audit.get("score"),
                grade=audit.get("grade"),
                critical_failed=bool(audit.get("critical_failed")),
                finding_ids=open_ids,
                released_at=now,
            ),
            subject_type="audit",
            subject_id=audit["_id"],
            branch_id=audit["branch_id"],
            region_id=audit["region_id"],
        )
        uow.record("audit.release", "audit", audit["_id"], {"findings": len(open_ids)}, branch_id=audit["branch_id"])
        return {**audit, **changes}

    released = await services.transact(actor(request), work)
    return json_response(SubmitResult.model_validate(submit_result(released)))


@router.post(
    "/api/v1/audits/{audit_id}/return",
    summary="Return a submitted audit to its auditor",
    body=ReturnRequest,
    response=AuditPublic,
    roles=REVIEWERS,
    extra_responses={409: "Not submitted"},
)
async def return_audit(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = authz.principal(request)
    audit = await visible_audit(services, who, match_info(request, "audit_id"))
    body = await body_of(request, ReturnRequest)
    audit_rules.next_status(audit["status"], "return")

    async def work(uow: UnitOfWork) -> Doc:
        changes = returned_changes(body.comment, uow.now)
        unset = list(SUBMISSION_FIELDS)
        if not await store.transition(uow.db, audit["_id"], "submitted", changes, uow.session, unset=unset):
            raise InvalidTransition("The audit is no longer submitted")
        # Findings belong to a submission; the next submission derives them afresh. Each withdrawal is an event,
        # so the feed never keeps a finding.created for a finding that no longer exists.
        withdrawn = await store.findings_of(uow.db, audit["_id"], session=uow.session)
        await store.delete_findings(uow.db, audit["_id"], uow.session)
        for finding in withdrawn:
            uow.emit(
                FindingWithdrawn(
                    finding_id=finding["_id"],
                    audit_id=audit["_id"],
                    branch_id=audit["branch_id"],
                    item_id=finding["item_id"],
                ),
                subject_type="finding",
                subject_id=finding["_id"],
                audit_id=audit["_id"],
                branch_id=audit["branch_id"],
            )
        if audit.get("assignment_id"):
            await programs.set_assignment_status(uow.db, audit["assignment_id"], "in_progress", uow.session)
        uow.emit(
            AuditReturned(audit_id=audit["_id"], branch_id=audit["branch_id"], comment=body.comment),
            subject_type="audit",
            subject_id=audit["_id"],
            branch_id=audit["branch_id"],
            region_id=audit["region_id"],
        )
        uow.record("audit.return", "audit", audit["_id"], {"comment": body.comment}, branch_id=audit["branch_id"])
        return {key: value for key, value in {**audit, **changes}.items() if key not in SUBMISSION_FIELDS}

    returned = await services.transact(actor(request), work)
    return json_response(_detail(services, who, returned))


# --- reading --------------------------------------------------------------------------------------


@router.get(
    "/api/v1/audits/{audit_id}",
    summary="One audit as the caller may see it",
    response=AuditPublic,
    extra_responses={404: "Unknown or outside the caller's scope"},
)
async def get_audit(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    db = services.db
    who = authz.principal(request)
    audit = await visible_audit(services, who, match_info(request, "audit_id"))
    view = audit_access.audit_detail(who, audit, pseudonym_key(services))
    view["findings"] = [audit_access.finding_view(who, f) for f in await store.findings_of(db, audit["_id"])]
    photos = await store.photos_by_item(db, audit["_id"])
    view["photos"] = photos
    checklist = await load_version(services, audit["checklist_key"], audit["checklist_version"])
    if who.role in FIELD and checklist is not None and audit["status"] in audit_rules.ANSWERABLE:
        view["progress"] = audit_progress(checklist, audit, photos).as_dict()
    if audit["status"] == "released" or who.is_head_office:
        view["appeals"] = [store.public_appeal(a) for a in await store.appeals_of(db, audit["_id"])]
        view["rectifications"] = [_rectification_row(r) for r in await store.rectifications_of(db, audit["_id"])]
    if who.is_head_office:
        version = await checklist_store.version_record(db, audit["checklist_key"], audit["checklist_version"])
        view["checklist"] = {
            "key": audit["checklist_key"],
            "version": audit["checklist_version"],
            "content_hash": (version or {}).get("content_hash"),
            "published_at": (version or {}).get("published_at"),
        }
        view["trail"] = [{**t, "id": t.pop("_id")} for t in await store.trail_of(db, audit["_id"])]
    return json_response(AuditPublic.model_validate(view).model_dump(mode="json", exclude_none=True))


RECTIFICATION_FIELDS = ("finding_id", "item_id", "severity", "status", "due_at", "assignee_id", "history", "closed_at")


def _rectification_row(doc: Doc) -> dict[str, Any]:
    return {k: doc.get(k) for k in RECTIFICATION_FIELDS} | {"id": doc["_id"]}


def history_filters(who: authz.Principal, q: AuditQuery) -> dict[str, Any] | None:
    """The Mongo filter for a history query, or None when the caller's scope excludes every row."""
    scope = audit_access.history_scope(who)
    if scope is None:
        return None
    if q.checklist_version is not None and not q.checklist_key:
        raise ValidationFailed(
            "checklist_version needs checklist_key",
            errors=[field_error(["query", "checklist_version"], "give checklist_key too")],
        )
    return store.history_filter(scope, q)


@router.get(
    "/api/v1/audits",
    summary="Audit history, newest first (every filter served by an index)",
    query=AuditQuery,
    response=AuditList,
)
async def list_audits(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = authz.principal(request)
    q = query_of(request, AuditQuery)
    filters = history_filters(who, q)
    if filters is None:
        return json_response({"items": [], "next_cursor": None})
    docs, cursor = await store.history_page(services.db, filters, q.limit, services.clock.now())
    key = pseudonym_key(services)
    items = [audit_access.audit_row(who, d, key) for d in docs]
    page = AuditList.model_validate({"items": items, "next_cursor": cursor})
    rows = [row.model_dump(mode="json", exclude_none=True) for row in page.items]
    return json_response({"items": rows, "next_cursor": page.next_cursor})
