"""Findings of audits, and appeals against them by the branch."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from aiohttp import web

from schemas.audit_events import AppealDecided, AppealFiled, AuditRescored
from schemas.audits import (
    AppealCreate,
    AppealDecision,
    AppealList,
    AppealPublic,
    AppealQuery,
    FindingList,
    FindingPublic,
    FindingQuery,
)
from server.context import Services, UnitOfWork
from server.db import Doc
from server.domain import audit_access, audit_rules
from server.domain.scoring import score_audit
from server.errors import Conflict, InvalidTransition, NotFound, ValidationFailed, field_error
from server.http import authz
from server.http.api import ApiRouter, body_of, json_response, match_info, query_of
from server.http.request_meta import actor
from server.http.routes.audits import finding_counts, pinned_checklist
from server.keys import SERVICES
from server.storage import audits as store

router = ApiRouter("findings")
REVIEWERS = frozenset({authz.COMPLIANCE, authz.ADMIN})
APPEAL_READERS = frozenset({authz.COMPLIANCE, authz.ADMIN, authz.BRANCH_HEAD, authz.REGIONAL_MANAGER})
RELEASED = {"$type": "date"}


def finding_scope(who: authz.Principal) -> dict[str, Any] | None:
    if who.role in audit_access.HEAD_OFFICE_VIEW:
        return {}
    if who.role in authz.FIELD_ROLES:
        return {"auditor_id": who.user_id}
    if who.role == authz.BRANCH_HEAD and who.branch_id:
        return {"branch_id": who.branch_id, "released_at": RELEASED}
    if who.role == authz.REGIONAL_MANAGER and who.region_id:
        return {"region_id": who.region_id, "released_at": RELEASED}
    return None


def _merge(filters: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any] | None:
    for key, value in scope.items():
        if key in filters and filters[key] != value:
            return None
        filters[key] = value
    return filters


@router.get(
    "/api/v1/findings",
    summary="Findings in the caller's scope (branch roles: released only)",
    query=FindingQuery,
    response=FindingList,
)
async def list_findings(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = authz.principal(request)
    q = query_of(request, FindingQuery)
    scope = finding_scope(who)
    wanted = {
        k: v
        for k, v in {
            "audit_id": q.audit_id,
            "branch_id": q.branch_id,
            "severity": q.severity,
            "status": q.status,
        }.items()
        if v
    }
    filters = _merge(wanted, scope) if scope is not None else None
    if filters is None:
        return json_response({"items": [], "next_cursor": None})
    docs, cursor = await store.findings_page(services.db, filters, q.limit, q.cursor)
    items = [FindingPublic.model_validate(audit_access.finding_view(who, d)).model_dump(mode="json") for d in docs]
    return json_response({"items": items, "next_cursor": cursor})


@router.post(
    "/api/v1/findings/{finding_id}/appeal",
    summary="Appeal a finding of a released audit",
    body=AppealCreate,
    response=AppealPublic,
    status=201,
    roles=frozenset({authz.BRANCH_HEAD}),
    extra_responses={200: "Replayed Idempotency-Key", 409: "Already appealed, decided or too late"},
)
async def file_appeal(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    db = services.db
    who = authz.principal(request)
    finding_id = match_info(request, "finding_id")
    finding = await store.finding(db, finding_id)
    if finding is None or finding.get("branch_id") != who.branch_id or not finding.get("released_at"):
        raise NotFound("Finding not found")
    body = await body_of(request, AppealCreate)
    key = request.headers.get("Idempotency-Key", "").strip()[:200] or None
    if key:
        earlier = await store.appeal_by_key(db, who.user_id, key)
        if earlier is not None:
            if earlier["finding_id"] != finding_id or earlier["reason"] != body.reason:
                raise Conflict("This Idempotency-Key was used for another appeal")
            return json_response(AppealPublic.model_validate(store.public_appeal(earlier)))
    now = services.clock.now()
    if finding["status"] != "open":
        raise InvalidTransition("The finding is no longer open")
    if finding.get("pending_appeal_id"):
        raise Conflict("This finding already has a pending appeal", extra={"appeal_id": finding["pending_appeal_id"]})
    if now > finding["released_at"] + timedelta(days=services.settings.appeal_window_days):
        raise Conflict(f"Appeals close {services.settings.appeal_window_days} days after release")
    if body.photo_ids:
        known = await db.photos.count_documents({"_id": {"$in": body.photo_ids}, "branch_id": finding["branch_id"]})
        if known != len(set(body.photo_ids)):
            raise ValidationFailed("Unknown photos", errors=[field_error(["body", "photo_ids"], "no such photos")])
    appeal = {
        "_id": str(uuid.uuid4()),
        "finding_id": finding_id,
        "audit_id": finding["audit_id"],
        "branch_id": finding["branch_id"],
        "region_id": finding["region_id"],
        "reason": body.reason,
        "photo_ids": body.photo_ids,
        "status": "pending",
        "filed_by": who.user_id,
        "filed_at": now,
        "idempotency_key": key,
    }

    async def work(uow: UnitOfWork) -> None:
        claimed = await uow.db.findings.update_one(
            {"_id": finding_id, "status": "open", "pending_appeal_id": None},
            {"$set": {"pending_appeal_id": appeal["_id"]}},
            session=uow.session,
        )
        if claimed.modified_count != 1:
            raise Conflict("This finding already has a pending appeal")
        await uow.db.appeals.insert_one(appeal, session=uow.session)
        uow.emit(
            AppealFiled(
                appeal_id=appeal["_id"],
                finding_id=finding_id,
                audit_id=finding["audit_id"],
                branch_id=finding["branch_id"],
            ),
            subject_type="appeal",
            subject_id=appeal["_id"],
            finding_id=finding_id,
            audit_id=finding["audit_id"],
            branch_id=finding["branch_id"],
            region_id=finding["region_id"],
        )
        uow.record(
            "appeal.file",
            "appeal",
            appeal["_id"],
            {"finding_id": finding_id},
            finding_id=finding_id,
            audit_id=finding["audit_id"],
        )

    await services.transact(actor(request), work)
    return json_response(AppealPublic.model_validate(store.public_appeal(appeal)), status=201)


@router.post(
    "/api/v1/appeals/{appeal_id}/decision",
    summary="Uphold or overturn an appeal (overturn re-scores)",
    body=AppealDecision,
    response=AppealPublic,
    roles=REVIEWERS,
    extra_responses={409: "Already decided"},
)
async def decide_appeal(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    appeal = await store.appeal(services.db, match_info(request, "appeal_id"))
    if appeal is None:
        raise NotFound("Appeal not found")
    body = await body_of(request, AppealDecision)
    if appeal["status"] != "pending":
        raise InvalidTransition(f"The appeal is already {appeal['status']}")
    audit = await store.audit(services.db, appeal["audit_id"])
    if audit is None:
        raise NotFound("Audit not found")
    checklist = await pinned_checklist(services, audit)

    async def work(uow: UnitOfWork) -> Doc:
        now = uow.now
        decided = {
            "status": body.outcome,
            "decided_by": uow.actor.user_id,
            "decided_at": now,
            "comment": body.comment,
        }
        done = await uow.db.appeals.update_one(
            {"_id": appeal["_id"], "status": "pending"}, {"$set": decided}, session=uow.session
        )
        if done.modified_count != 1:
            raise InvalidTransition("The appeal was decided meanwhile")
        finding_change: dict[str, Any] = {"pending_appeal_id": None}
        if body.outcome == "overturned":
            finding_change.update(status="overturned", overturned_at=now)
        await uow.db.findings.update_one({"_id": appeal["finding_id"]}, {"$set": finding_change}, session=uow.session)
        if body.outcome == "overturned":
            await _rescore(uow, services, audit["_id"], checklist, appeal)
        uow.emit(
            AppealDecided(
                appeal_id=appeal["_id"],
                finding_id=appeal["finding_id"],
                audit_id=appeal["audit_id"],
                branch_id=appeal["branch_id"],
                outcome=body.outcome,
            ),
            subject_type="appeal",
            subject_id=appeal["_id"],
            finding_id=appeal["finding_id"],
            audit_id=appeal["audit_id"],
            branch_id=appeal["branch_id"],
            region_id=appeal["region_id"],
        )
        uow.record(
            "appeal.decide",
            "appeal",
            appeal["_id"],
            {"outcome": body.outcome, "comment": body.comment},
            finding_id=appeal["finding_id"],
            audit_id=appeal["audit_id"],
        )
        return {**appeal, **decided}

    decided = await services.transact(actor(request), work)
    return json_response(AppealPublic.model_validate(store.public_appeal(decided)))


async def _rescore(uow: UnitOfWork, services: Services, audit_id: str, checklist: Any, appeal: Doc) -> None:
    """Score the audit again with its own rules version, overturned findings counting as passed."""
    audit = await store.audit(uow.db, audit_id, session=uow.session)
    assert audit is not None
    findings = await store.findings_of(uow.db, audit_id, session=uow.session)
    overturned = {f["item_id"] for f in findings if f["status"] == "overturned"}
    old = audit.get("result") or {}
    scored = score_audit(
        checklist,
        audit_rules.answers_of(audit.get("answers")),
        branch_type=audit.get("branch_type"),
        channel=audit.get("channel"),
        overturned=overturned,
        rules_version=int(old.get("rules_version", 1)),
    )
    result = scored.model_dump(mode="json")
    result["findings"] = old.get("findings", [])
    await uow.db.audits.update_one(
        {"_id": audit_id},
        {
            "$set": {
                "result": result,
                "score": scored.score,
                "grade": scored.grade,
                "critical_failed": scored.critical_failed,
                "finding_counts": finding_counts(findings),
                "rescored_at": uow.now,
                "updated_at": uow.now,
            }
        },
        session=uow.session,
    )
    reason = f"appeal {appeal['_id']} overturned finding {appeal['finding_id']}"
    uow.emit(
        AuditRescored(
            audit_id=audit_id,
            branch_id=audit["branch_id"],
            old_score=audit.get("score"),
            new_score=scored.score,
            old_grade=audit.get("grade"),
            new_grade=scored.grade,
            reason=reason,
        ),
        subject_type="audit",
        subject_id=audit_id,
        branch_id=audit["branch_id"],
        region_id=audit["region_id"],
    )


def appeal_scope(who: authz.Principal) -> dict[str, Any] | None:
    if who.role in REVIEWERS:
        return {}
    if who.role == authz.BRANCH_HEAD and who.branch_id:
        return {"branch_id": who.branch_id}
    if who.role == authz.REGIONAL_MANAGER and who.region_id:
        return {"region_id": who.region_id}
    return None


@router.get(
    "/api/v1/appeals",
    summary="Appeals in the caller's scope",
    query=AppealQuery,
    response=AppealList,
    roles=APPEAL_READERS,
)
async def list_appeals(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = authz.principal(request)
    q = query_of(request, AppealQuery)
    scope = appeal_scope(who)
    wanted = {k: v for k, v in {"status": q.status, "branch_id": q.branch_id}.items() if v}
    filters = _merge(wanted, scope) if scope is not None else None
    if filters is None:
        return json_response({"items": [], "next_cursor": None})
    docs, cursor = await store.appeals_page(services.db, filters, q.limit, q.cursor)
    items = [AppealPublic.model_validate(store.public_appeal(d)).model_dump(mode="json") for d in docs]
    return json_response({"items": items, "next_cursor": cursor})
