"""Audits from phones: start, answer, submit, review (release or return), detail and history. Handlers
parse, call the commands of server.services.audits, and serialize what the caller may see."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

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
from server.context import Services
from server.db import Doc
from server.domain import access, audit_access, audit_rules
from server.domain.submission import submit_result
from server.errors import ValidationFailed, field_error
from server.http import authz
from server.http.api import ApiRouter, body_of, json_response, match_info, query_of
from server.http.request_meta import origin
from server.keys import SERVICES
from server.services import audits as commands
from server.services.audits import audit_progress, visible_audit
from server.storage import audits as store
from server.storage import checklists as checklist_store

__all__ = ["history_filters", "router"]

router = ApiRouter("audits")
FIELD = authz.FIELD_ROLES
REVIEWERS = authz.REVIEWERS


def _detail(services: Services, who: authz.Principal, audit: Doc) -> dict[str, Any]:
    view = audit_access.audit_detail(who, audit, services.pseudonym_key)
    return AuditPublic.model_validate(view).model_dump(mode="json", exclude_none=True)


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
    started = await commands.start_audit(
        services, who, commands.StartAudit(audit_id, body), origin=origin(request)
    )
    return json_response(_detail(services, who, started.audit), status=201 if started.created else 200)


@router.patch(
    "/api/v1/audits/{audit_id}/answers",
    summary="Store a batch of answers (latest answered_at wins; phones' clocks are not trusted blindly)",
    body=AnswerBatch,
    response=AnswersResult,
    roles=FIELD,
    extra_responses={409: "The audit is submitted", 422: "An answer does not fit its item"},
)
async def answer_audit(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    batch = (await body_of(request, AnswerBatch)).root
    answered = await commands.answer_audit(
        services,
        authz.principal(request),
        commands.AnswerAudit(match_info(request, "audit_id"), batch),
        origin=origin(request),
    )
    result = {
        "audit_id": answered.audit["_id"],
        "status": answered.audit["status"],
        "applied": answered.applied,
        "progress": answered.progress.as_dict(),
    }
    return json_response(AnswersResult.model_validate(result))


@router.post(
    "/api/v1/audits/{audit_id}/submit",
    summary="Submit: 422 until complete; then frozen and scored",
    response=SubmitResult,
    roles=FIELD,
    extra_responses={422: "Missing answers or photos, one error per item", 409: "Not submittable"},
)
async def submit_audit(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    submitted = await commands.submit_audit(
        services, authz.principal(request), match_info(request, "audit_id"), origin=origin(request)
    )
    return json_response(SubmitResult.model_validate(submit_result(submitted)))


@router.post(
    "/api/v1/audits/{audit_id}/release",
    summary="Release a submitted audit to the branch",
    response=SubmitResult,
    roles=REVIEWERS,
    extra_responses={409: "Not submitted"},
)
async def release_audit(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    released = await commands.release_audit(
        services, authz.principal(request), match_info(request, "audit_id"), origin=origin(request)
    )
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
    body = await body_of(request, ReturnRequest)
    returned = await commands.return_audit(
        services, who, commands.ReturnAudit(match_info(request, "audit_id"), body.comment), origin=origin(request)
    )
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
    view = audit_access.audit_detail(who, audit, services.pseudonym_key)
    findings = await store.findings_of(db, audit["_id"], fields=store.FINDING_FIELDS)
    view["findings"] = [audit_access.finding_view(who, f) for f in findings]
    photos = await store.photos_by_item(db, audit["_id"])
    view["photos"] = photos
    checklist = await checklist_store.get_version(db, audit["checklist_key"], audit["checklist_version"])
    if who.role in FIELD and checklist is not None and audit["status"] in audit_rules.ANSWERABLE:
        view["progress"] = audit_progress(checklist, audit, photos).as_dict()
    if audit["status"] == "released" or who.is_head_office:
        view["appeals"] = [store.public_appeal(a) for a in await store.appeals_of(db, audit["_id"])]
        rectifications = await store.rectifications_of(db, audit["_id"], RECTIFICATION_FIELDS)
        view["rectifications"] = [_rectification_row(r) for r in rectifications]
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
    scope = access.history_scope(who)
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
    key = services.pseudonym_key
    items = [audit_access.audit_row(who, d, key) for d in docs]
    page = AuditList.model_validate({"items": items, "next_cursor": cursor})
    rows = [row.model_dump(mode="json", exclude_none=True) for row in page.items]
    return json_response({"items": rows, "next_cursor": page.next_cursor})
