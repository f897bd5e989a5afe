"""Audits from phones: start (client UUID, replay-safe), answer in batches (latest answered_at wins),
submit (frozen, scored, findings), review (release or return), detail and history."""

from __future__ import annotations

import importlib
import uuid
from datetime import datetime, timedelta
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
from server.domain import audit_access, audit_rules
from server.domain.scoring import ScoreResult, score_audit
from server.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed, field_error
from server.http import authz
from server.http.api import ApiRouter, body_of, json_response, match_info, query_of
from server.http.request_meta import actor
from server.keys import SERVICES
from server.storage import audits as store
from server.storage import org, programs

router = ApiRouter("audits")
FIELD = authz.FIELD_ROLES
REVIEWERS = frozenset({authz.COMPLIANCE, authz.ADMIN})
MAX_BATCH = 500
FUTURE_TOLERANCE = timedelta(minutes=10)
FINDING_NS = uuid.UUID("0f4f1c1e-6a55-4b9e-9c39-3b0f7f6f2a10")
SEVERITIES = ("minor", "major", "critical")


# --- checklists (immutable versions are cached per process) ---------------------------------------


def _checklist_store() -> Any:
    try:
        return importlib.import_module("server.storage.checklists")
    except ModuleNotFoundError:
        return None


async def load_version(services: Services, key: str, version: int) -> Checklist | None:
    """A published checklist version; versions never change, so they are cached."""
    cache: dict[tuple[str, int], Checklist] = services.extras.setdefault("checklist_versions", {})
    found = cache.get((key, version))
    if found is not None:
        return found
    module = _checklist_store()
    if module is not None:
        found = await module.get_version(services.db, key, version)
    else:
        doc = await services.db.checklist_versions.find_one({"_id": f"{key}@{version}"})
        found = Checklist.model_validate(doc["definition"]) if doc else None
    if found is not None:
        cache[(key, version)] = found
    return found


async def current_checklist(services: Services, key: str) -> tuple[Checklist, int] | None:
    module = _checklist_store()
    if module is not None:
        current: tuple[Checklist, int] | None = await module.get_current(services.db, key)
        return current
    head = await services.db.checklists.find_one({"_id": key})
    if head is None:
        return None
    version = int(head["current_version"])
    checklist = await load_version(services, key, version)
    return (checklist, version) if checklist else None


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
    audit_id = match_info(request, "audit_id")
    try:
        audit_id = str(uuid.UUID(audit_id))
    except ValueError:
        raise ValidationFailed(
            "audit_id must be a UUID", errors=[field_error(["path", "audit_id"], "not a UUID")]
        ) from None
    body = await body_of(request, AuditStart)
    request_doc = body.model_dump(mode="json")
    existing = await store.audit(services.db, audit_id)
    if existing is not None:
        return _replayed_start(services, who, existing, request_doc)
    doc, assignment = await _new_audit(services, who, audit_id, body, request_doc)

    async def work(uow: UnitOfWork) -> None:
        await store.insert_audit(uow.db, doc, uow.session)
        if assignment is not None:
            taken = await uow.db.assignments.update_one(
                {"_id": assignment["_id"], "audit_id": None},
                {"$set": {"audit_id": audit_id, "status": "in_progress"}},
                session=uow.session,
            )
            if taken.modified_count != 1:
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
    if existing.get("auditor_id") != who.user_id or existing.get("start_request") != request_doc:
        raise Conflict("An audit with this id was started with a different request")
    return json_response(_detail(services, who, existing), status=200)


async def _new_audit(
    services: Services, who: authz.Principal, audit_id: str, body: AuditStart, request_doc: dict[str, Any]
) -> tuple[Doc, Doc | None]:
    db = services.db
    assignment: Doc | None = None
    if body.assignment_id:
        assignment = await programs.assignment(db, body.assignment_id)
        if assignment is None:
            raise ValidationFailed(
                "Unknown assignment", errors=[field_error(["body", "assignment_id"], "no such assignment")]
            )
        if assignment.get("assignee_id") != who.user_id:
            raise Forbidden("Only the assignee may start this visit")
        if assignment.get("audit_id") or assignment.get("status") != "planned":
            raise Conflict("This assignment's audit was already started")
        if body.branch_id and body.branch_id != assignment["branch_id"]:
            raise ValidationFailed(
                "branch_id differs from the assignment's",
                errors=[field_error(["body", "branch_id"], "not the assignment's branch")],
            )
        if body.checklist_key != assignment["checklist_key"]:
            raise ValidationFailed(
                "checklist_key differs from the assignment's",
                errors=[field_error(["body", "checklist_key"], "not the assignment's checklist")],
            )
    branch_id = assignment["branch_id"] if assignment else body.branch_id
    branch = await org.branch(db, str(branch_id))
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
    now = services.clock.now()
    channel = assignment["channel"] if assignment else checklist.channel
    covert = bool(assignment["covert"]) if assignment else who.role == authz.MYSTERY_SHOPPER
    location = (body.location.lat, body.location.lon) if body.location else None
    window = (assignment["window_start"], assignment["window_end"]) if assignment else None
    flags, distance = audit_rules.checkin_flags(
        at=body.started_at,
        location=location,
        branch_location=(branch["location"]["lat"], branch["location"]["lon"]) if channel == "in_branch" else None,
        geofence_m=float(branch.get("geofence_m") or 150),
        window=window,
    )
    if body.started_at > now + FUTURE_TOLERANCE:
        flags.append("started_in_future")
    started_at = body.started_at.astimezone(now.tzinfo)
    doc: Doc = {
        "_id": audit_id,
        "assignment_id": assignment["_id"] if assignment else None,
        "program_id": assignment["program_id"] if assignment else None,
        "branch_id": branch["_id"],
        "region_id": branch["region_id"],
        "branch_timezone": branch.get("timezone"),
        "branch_type": branch.get("branch_type"),
        "checklist_key": body.checklist_key,
        "checklist_version": version,
        "channel": channel,
        "covert": covert,
        "auditor_id": who.user_id,
        "auditor_role": who.role,
        "auditor_name": who.display_name,
        "status": "in_progress",
        "started_at": started_at,
        "history_key": store.history_key(started_at, audit_id),
        "checkin": {
            "at": started_at,
            "received_at": now,
            "location": request_doc.get("location"),
            "distance_m": distance,
            "flags": flags,
        },
        "answers": {},
        "answers_rev": 0,
        "submissions": 0,
        "flags": list(flags),
        "finding_counts": dict.fromkeys(SEVERITIES, 0),
        "open_rectifications": 0,
        "start_request": request_doc,
        "created_at": now,
        "updated_at": now,
    }
    return doc, assignment


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
    newest = store.newest_per_item(answers)

    async def work(uow: UnitOfWork) -> int:
        applied = await store.apply_answers(
            uow.db, audit["_id"], newest, uow.now, list(audit_rules.ANSWERABLE), uow.session
        )
        if applied:
            uow.record(
                "audit.answer",
                "audit",
                audit["_id"],
                {"received": len(answers), "applied": applied},
                branch_id=audit["branch_id"],
            )
        return applied

    applied = await services.transact(actor(request), work)
    fresh = await store.audit(services.db, audit["_id"]) or audit
    if fresh["status"] in audit_rules.SUBMITTED and applied == 0:
        audit_rules.next_status(fresh["status"], "answer")  # submitted meanwhile: 409
    photos = await store.photos_by_item(services.db, audit["_id"])
    result = {
        "audit_id": audit["_id"],
        "status": fresh["status"],
        "applied": applied,
        "progress": audit_progress(checklist, fresh, photos).as_dict(),
    }
    return json_response(AnswersResult.model_validate(result))


# --- submit ---------------------------------------------------------------------------------------


def submit_result(audit: Doc) -> dict[str, Any]:
    result = audit.get("result") or {}
    return {
        "audit_id": audit["_id"],
        "status": audit["status"],
        "score": audit.get("score"),
        "grade": audit.get("grade"),
        "critical_failed": bool(audit.get("critical_failed")),
        "sections": [
            {"id": s["id"], "score": s["score"], "max": s["max"], "points": s["points"]}
            for s in result.get("sections", [])
        ],
        "findings": list(result.get("findings", [])),
    }


def build_findings(
    audit: Doc,
    checklist: Checklist,
    scored: ScoreResult,
    photos: dict[str, list[str]],
    now: datetime,
    submission: int,
) -> list[Doc]:
    """One finding per failed, visible, scored item."""
    answers = audit.get("answers") or {}
    findings = []
    for entry in scored.failed_items():
        item = checklist.item(entry.item_id)
        assert item is not None
        answer = answers.get(entry.item_id) or {}
        findings.append(
            {
                "_id": str(uuid.uuid5(FINDING_NS, f"{audit['_id']}:{entry.item_id}:{submission}")),
                "audit_id": audit["_id"],
                "branch_id": audit["branch_id"],
                "region_id": audit["region_id"],
                "program_id": audit.get("program_id"),
                "checklist_key": audit["checklist_key"],
                "checklist_version": audit["checklist_version"],
                "item_id": entry.item_id,
                "section_id": entry.section_id,
                "severity": item.severity,
                "critical": item.critical,
                "answer": {
                    "value": answer.get("value"),
                    "na": bool(answer.get("na")),
                    "note": answer.get("note"),
                },
                "photo_ids": photos.get(entry.item_id, []),
                "status": "open",
                "fixed_on_spot": bool(answer.get("fixed_on_spot")),
                "covert": bool(audit.get("covert")),
                "auditor_id": audit["auditor_id"],
                "created_at": now,
                "released_at": None,
                "pending_appeal_id": None,
            }
        )
    return findings


def result_document(scored: ScoreResult, findings: list[Doc]) -> dict[str, Any]:
    stored = scored.model_dump(mode="json")
    stored["findings"] = [{"id": f["_id"], "item_id": f["item_id"], "severity": f["severity"]} for f in findings]
    return stored


def finding_counts(findings: list[Doc]) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES, 0)
    for f in findings:
        if f["status"] == "open":
            counts[f["severity"]] += 1
    return counts


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
    for _ in range(5):
        audit = await own_audit(services, who, audit_id)
        if audit["status"] in audit_rules.SUBMITTED:
            return json_response(SubmitResult.model_validate(submit_result(audit)))
        outcome = await _try_submit(request, services, audit)
        if outcome is not None:
            return json_response(SubmitResult.model_validate(outcome))
    raise Conflict("Answers kept arriving while submitting; retry")


async def _try_submit(request: web.Request, services: Services, audit: Doc) -> dict[str, Any] | None:
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
    result = result_document(scored, findings)
    changes = {
        "status": "submitted",
        "submitted_at": now,
        "updated_at": now,
        "submissions": submission,
        "result": result,
        "score": scored.score,
        "grade": scored.grade,
        "critical_failed": scored.critical_failed,
        "finding_counts": finding_counts(findings),
    }

    async def work(uow: UnitOfWork) -> bool:
        if not await store.freeze_submitted(
            uow.db,
            audit["_id"],
            int(audit.get("answers_rev", 0)),
            changes,
            list(audit_rules.ANSWERABLE),
            uow.session,
        ):
            return False
        await store.insert_findings(uow.db, findings, uow.session)
        if audit.get("assignment_id"):
            await programs.set_assignment_status(uow.db, audit["assignment_id"], "submitted", uow.session)
        ids = {"branch_id": audit["branch_id"], "region_id": audit["region_id"]}
        uow.emit(
            AuditSubmitted(
                audit_id=audit["_id"],
                branch_id=audit["branch_id"],
                region_id=audit["region_id"],
                score=scored.score,
                grade=scored.grade,
                critical_failed=scored.critical_failed,
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
        await uow.db.findings.update_many(
            {"audit_id": audit["_id"]}, {"$set": {"released_at": now}}, session=uow.session
        )
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
        now = uow.now
        changes = {
            "status": "returned",
            "returned_comment": body.comment,
            "returned_at": now,
            "updated_at": now,
            "finding_counts": dict.fromkeys(SEVERITIES, 0),
        }
        unset = ["result", "score", "grade", "critical_failed", "submitted_at"]
        if not await store.transition(uow.db, audit["_id"], "submitted", changes, uow.session, unset=unset):
            raise InvalidTransition("The audit is no longer submitted")
        # Findings belong to a submission; the next submission derives them afresh. Each withdrawal is an event,
        # so the feed never keeps a finding.created for a finding that no longer exists.
        withdrawn = await store.findings_of(uow.db, audit["_id"], session=uow.session)
        await uow.db.findings.delete_many({"audit_id": audit["_id"]}, session=uow.session)
        for finding in withdrawn:
            uow.emit(
                FindingWithdrawn(finding_id=finding["_id"], audit_id=audit["_id"], branch_id=audit["branch_id"],
                                 item_id=finding["item_id"]),
                subject_type="finding", subject_id=finding["_id"], audit_id=audit["_id"],
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
        returned = {**audit, **changes}
        for key in unset:
            returned.pop(key, None)
        return returned

    returned = await services.transact(actor(request), work)
    return json_response(_detail(services, who, returned))


# --- reading --------------------------------------------------------------------------------------


def _detail(services: Services, who: authz.Principal, audit: Doc) -> dict[str, Any]:
    view = audit_access.audit_detail(who, audit, pseudonym_key(services))
    return AuditPublic.model_validate(view).model_dump(mode="json", exclude_none=True)


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
    findings = await store.findings_of(db, audit["_id"])
    view["findings"] = [audit_access.finding_view(who, f) for f in findings]
    photos = await store.photos_by_item(db, audit["_id"])
    view["photos"] = photos
    checklist = await load_version(services, audit["checklist_key"], audit["checklist_version"])
    if who.role in FIELD and checklist is not None and audit["status"] in audit_rules.ANSWERABLE:
        view["progress"] = audit_progress(checklist, audit, photos).as_dict()
    if audit["status"] == "released" or who.is_head_office:
        view["appeals"] = [store.public_appeal(a) for a in await store.appeals_of(db, audit["_id"])]
        view["rectifications"] = [
            _rectification_row(r) for r in await db.rectifications.find({"audit_id": audit["_id"]}).to_list()
        ]
    if who.is_head_office:
        version = await db.checklist_versions.find_one(
            {"_id": f"{audit['checklist_key']}@{audit['checklist_version']}"}, {"definition": 0}
        )
        view["checklist"] = {
            "key": audit["checklist_key"],
            "version": audit["checklist_version"],
            "content_hash": (version or {}).get("content_hash"),
            "published_at": (version or {}).get("published_at"),
        }
        trail = (
            await db.trail.find(
                {"$or": [{"entity_id": audit["_id"]}, {"related_ids": audit["_id"]}]},
                {
                    "_id": 1,
                    "at": 1,
                    "actor_id": 1,
                    "actor_role": 1,
                    "action": 1,
                    "entity_type": 1,
                    "entity_id": 1,
                    "summary": 1,
                },
            )
            .sort("at", 1)
            .to_list()
        )
        view["trail"] = [{**t, "id": t.pop("_id")} for t in trail]
    return json_response(AuditPublic.model_validate(view).model_dump(mode="json", exclude_none=True))


def _rectification_row(doc: Doc) -> dict[str, Any]:
    return {
        k: doc.get(k)
        for k in (
            "finding_id",
            "item_id",
            "severity",
            "status",
            "due_at",
            "assignee_id",
            "history",
            "closed_at",
        )
    } | {"id": doc["_id"]}


EQUALITY_FILTERS = (
    "branch_id",
    "region_id",
    "program_id",
    "checklist_key",
    "checklist_version",
    "status",
    "grade",
    "critical_failed",
)


def history_scope(who: authz.Principal) -> dict[str, Any] | None:
    """What the caller may list at all (None: nothing)."""
    if who.role in audit_access.HEAD_OFFICE_VIEW:
        return {}
    if who.role in FIELD:
        return {"auditor_id": who.user_id}
    if who.role == authz.BRANCH_HEAD and who.branch_id:
        return {"branch_id": who.branch_id, "status": "released"}
    if who.role == authz.REGIONAL_MANAGER and who.region_id:
        return {"region_id": who.region_id, "status": "released"}
    return None


def history_filters(who: authz.Principal, q: AuditQuery) -> dict[str, Any] | None:
    """The Mongo filter for a history query, or None when the caller's scope excludes every row."""
    scope = history_scope(who)
    if scope is None:
        return None
    if q.checklist_version is not None and not q.checklist_key:
        raise ValidationFailed(
            "checklist_version needs checklist_key",
            errors=[field_error(["query", "checklist_version"], "give checklist_key too")],
        )
    filters: dict[str, Any] = {name: getattr(q, name) for name in EQUALITY_FILTERS if getattr(q, name) is not None}
    auditor = q.inspector or q.auditor_id
    if auditor:
        filters["auditor_id"] = auditor
    for key, value in scope.items():
        if key in filters and filters[key] != value:
            return None
        filters[key] = value
    if q.min_score is not None or q.max_score is not None:
        filters["score"] = {k: v for k, v in (("$gte", q.min_score), ("$lte", q.max_score)) if v is not None}
    if q.has_flag:
        filters["flags"] = {"$gte": ""} if q.has_flag == "any" else q.has_flag
    filters.update(store.history_bounds(q.from_, q.to, q.cursor))
    return filters


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
    docs, cursor = await store.history_page(services.db, filters, q.limit)
    key = pseudonym_key(services)
    items = [audit_access.audit_row(who, d, key) for d in docs]
    page = AuditList.model_validate({"items": items, "next_cursor": cursor})
    rows = [row.model_dump(mode="json", exclude_none=True) for row in page.items]
    return json_response({"items": rows, "next_cursor": page.next_cursor})
