"""Rectifications: the branch head's list and the transitions of the fix workflow (parsed here, decided by
server.services.rectifications)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from schemas.common import Page
from schemas.rectifications import (
    ExtensionDecision,
    ExtensionRequest,
    LanguageQuery,
    RectificationDetail,
    RectificationPublic,
    RectificationQuery,
    RejectFix,
    SubmitFix,
    VerifyFix,
)
from server.db import Doc
from server.domain import rectification_rules as rules
from server.domain.deadlines import local_iso
from server.http import authz
from server.http.api import ApiRouter, body_of, json_response, match_info, query_of
from server.http.request_meta import origin
from server.keys import SERVICES
from server.notify.messages import LANGUAGES, item_text
from server.services import rectifications as commands
from server.storage import rectifications as store

router = ApiRouter("rectifications")
VIEWERS = authz.HEAD_OFFICE | authz.BRANCH_SIDE | authz.FIELD_ROLES
# Who may call each transition is the state machine's (server.domain.rectification_rules).
VERIFIERS = rules.TRANSITIONS["verify"].roles
EXTENSION_DECIDERS = rules.TRANSITIONS["decide_extension"].roles
SHOPPER_PSEUDONYM = "mystery-shopper"
CONFLICT = {409: "Not allowed in the current state", 404: "Unknown or outside the caller's scope"}


def _language(request: web.Request, explicit: str | None, who: authz.Principal) -> str:
    if explicit:
        return explicit
    for part in request.headers.get("Accept-Language", "").split(","):
        tag = part.split(";")[0].strip()
        for language in LANGUAGES:
            if tag.lower() == language.lower() or tag.lower().split("-")[0] == language.lower().split("-")[0]:
                return language
    return who.language


def _mask(who: authz.Principal, rect: Doc, value: Any) -> Any:
    """Branch-side roles never learn who the mystery shopper was."""
    if (
        who.is_branch_side
        and rect.get("auditor_role") == "mystery_shopper"
        and value
        and value == rect.get("inspector_id")
    ):
        return SHOPPER_PSEUDONYM
    return value


def _finding(doc: Doc | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    return {
        "id": doc["_id"],
        "item_id": doc["item_id"],
        "section_id": doc.get("section_id"),
        "severity": doc["severity"],
        "critical": bool(doc.get("critical")),
        "answer": doc.get("answer"),
        "photo_ids": list(doc.get("photo_ids") or []),
        "status": doc.get("status", "open"),
        "fixed_on_spot": bool(doc.get("fixed_on_spot")),
    }


def public(
    rect: Doc, who: authz.Principal, language: str, now: Any, finding: Doc | None, history: bool = False
) -> dict[str, Any]:
    timezone = rect.get("timezone") or "UTC"
    body: dict[str, Any] = {
        "id": rect["_id"],
        "finding_id": rect["finding_id"],
        "audit_id": rect["audit_id"],
        "branch_id": rect["branch_id"],
        "region_id": rect.get("region_id"),
        "item_id": rect["item_id"],
        "item_text": item_text(rect, language),
        "severity": rect["severity"],
        "status": rect["status"],
        "overdue": rules.is_overdue(rect["status"], rect["due_at"], now),
        "due_at": rect["due_at"],
        "due_at_local": local_iso(rect["due_at"], timezone),
        "timezone": timezone,
        "assignee_id": rect.get("assignee_id"),
        "note": rect.get("note"),
        "photo_ids": list(rect.get("photo_ids") or []),
        "inspector_photo_ids": list(rect.get("inspector_photo_ids") or []),
        "submitted_by": rect.get("submitted_by"),
        "verified_by": _mask(who, rect, rect.get("verified_by")),
        "extension": rect.get("extension"),
        "escalation_level": int(rect.get("escalation_level") or 0),
        "next_reminder_at": rect.get("next_reminder_at"),
        "finding": _finding(finding),
        "created_at": rect["created_at"],
        "closed_at": rect.get("closed_at"),
    }
    if history:
        body["history"] = [
            {**entry, "by": _mask(who, rect, entry.get("by"))} for entry in rect.get("history", [])
        ]
    return body


@router.get(
    "/api/v1/rectifications",
    summary="Rectifications in the caller's scope, by due date",
    query=RectificationQuery,
    response=Page[RectificationPublic],
    roles=VIEWERS,
)
async def list_rectifications(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = authz.principal(request)
    q = query_of(request, RectificationQuery)
    now = services.clock.now()
    filters: dict[str, Any] = dict(authz.rectification_scope_filter(who))
    if q.branch_id:
        if "branch_id" in filters and filters["branch_id"] != q.branch_id:
            filters = {"_id": None}  # another branch: an empty page, not an error that confirms it exists
        else:
            filters["branch_id"] = q.branch_id
    state = store.status_filter(q.status, q.overdue, now)
    docs, cursor = await store.page(
        services.db, {"$and": [filters, state]} if state else filters, q.limit, q.cursor
    )
    findings = await store.findings_by_id(services.db, [d["finding_id"] for d in docs])
    language = _language(request, q.lang, who)
    items = [public(d, who, language, now, findings.get(d["finding_id"])) for d in docs]
    return json_response(
        {
            "items": [RectificationPublic.model_validate(i).model_dump(mode="json") for i in items],
            "next_cursor": cursor,
        }
    )


async def _respond(request: web.Request, rect: Doc, who: authz.Principal) -> web.Response:
    services = request.app[SERVICES]
    findings = await store.findings_by_id(services.db, [rect["finding_id"]])
    language = _language(
        request, request.query.get("lang") if request.query.get("lang") in LANGUAGES else None, who
    )
    detail = public(rect, who, language, services.clock.now(), findings.get(rect["finding_id"]), history=True)
    return json_response(RectificationDetail.model_validate(detail).model_dump(mode="json", by_alias=True))


async def _command(request: web.Request, run: Callable[..., Awaitable[Doc]], command: object) -> web.Response:
    """Run one workflow command as the caller and answer the rectification as they may see it."""
    who = authz.principal(request)
    changed = await run(request.app[SERVICES], who, command, origin=origin(request))
    return await _respond(request, changed, who)


@router.get(
    "/api/v1/rectifications/{rect_id}",
    summary="One rectification with its history",
    query=LanguageQuery,
    response=RectificationDetail,
    roles=VIEWERS,
    extra_responses={404: CONFLICT[404]},
)
async def get_rectification(request: web.Request) -> web.Response:
    who = authz.principal(request)
    rect = await commands.visible_rectification(request.app[SERVICES], who, match_info(request, "rect_id"))
    return await _respond(request, rect, who)


@router.post(
    "/api/v1/rectifications/{rect_id}/submit",
    summary="Branch head submits the fix (needs a photo)",
    body=SubmitFix,
    response=RectificationDetail,
    roles=authz.BRANCH_ROLES,
    extra_responses={**CONFLICT, 422: "No after photo yet"},
)
async def submit_rectification(request: web.Request) -> web.Response:
    body = await body_of(request, SubmitFix)
    rect_id = match_info(request, "rect_id")
    return await _command(request, commands.submit_fix, commands.SubmitFix(rect_id, body.note))


@router.post(
    "/api/v1/rectifications/{rect_id}/verify",
    summary="Inspector or compliance accepts the fix",
    body=VerifyFix,
    response=RectificationDetail,
    roles=VERIFIERS,
    extra_responses={**CONFLICT, 403: "The submitter cannot verify"},
)
async def verify_rectification(request: web.Request) -> web.Response:
    body = await body_of(request, VerifyFix)
    rect_id = match_info(request, "rect_id")
    return await _command(request, commands.verify_fix, commands.VerifyFix(rect_id, body.comment))


@router.post(
    "/api/v1/rectifications/{rect_id}/reject",
    summary="Send the fix back with a new deadline",
    body=RejectFix,
    response=RectificationDetail,
    roles=VERIFIERS,
    extra_responses={**CONFLICT, 403: "The submitter cannot reject"},
)
async def reject_rectification(request: web.Request) -> web.Response:
    body = await body_of(request, RejectFix)
    rect_id = match_info(request, "rect_id")
    return await _command(request, commands.reject_fix, commands.RejectFix(rect_id, body.comment, body.due_at))


@router.post(
    "/api/v1/rectifications/{rect_id}/extension",
    summary="Branch head asks for a later deadline",
    body=ExtensionRequest,
    response=RectificationDetail,
    roles=authz.BRANCH_ROLES,
    extra_responses=CONFLICT,
)
async def request_extension(request: web.Request) -> web.Response:
    body = await body_of(request, ExtensionRequest)
    rect_id = match_info(request, "rect_id")
    command = commands.RequestExtension(rect_id, body.requested_due_at, body.reason)
    return await _command(request, commands.request_extension, command)


@router.post(
    "/api/v1/rectifications/{rect_id}/extension/decision",
    summary="Compliance or the regional manager approves or refuses an extension",
    body=ExtensionDecision,
    response=RectificationDetail,
    roles=EXTENSION_DECIDERS,
    extra_responses=CONFLICT,
)
async def decide_extension(request: web.Request) -> web.Response:
    body = await body_of(request, ExtensionDecision)
    rect_id = match_info(request, "rect_id")
    command = commands.DecideExtension(rect_id, body.approve, body.comment)
    return await _command(request, commands.decide_extension, command)
