"""Findings of audits, and appeals against them by the branch: parse, call server.services.appeals,
serialize what the caller may see."""

from __future__ import annotations

from typing import Any

from aiohttp import web

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
from server.context import Services
from server.db import Doc
from server.domain import access, audit_access
from server.http import authz
from server.http.api import ApiRouter, body_of, json_response, match_info, query_of
from server.http.request_meta import origin
from server.keys import SERVICES
from server.reports.language import report_language
from server.services import appeals as commands
from server.storage import audits as store
from server.storage import checklists as checklist_store

router = ApiRouter("findings")
APPEAL_READERS = frozenset({*access.REVIEWERS, *access.BRANCH_SIDE})


def _merge(filters: dict[str, Any], scope: dict[str, Any]) -> dict[str, Any] | None:
    for key, value in scope.items():
        if key in filters and filters[key] != value:
            return None
        filters[key] = value
    return filters


async def _item_text(services: Services, finding: Doc, language: str) -> str | None:
    """The finding's item in the reader's language, from the checklist version its audit answered."""
    version = finding.get("checklist_version")
    if not finding.get("checklist_key") or version is None:
        return None
    checklist = await checklist_store.get_version(services.db, finding["checklist_key"], int(version))
    item = checklist.item(finding["item_id"]) if checklist else None
    if checklist is None or item is None:
        return None
    texts = item.text.model_dump(by_alias=True)
    return str(texts.get(language) or texts.get(checklist.default_language) or finding["item_id"])


async def finding_public(services: Services, who: authz.Principal, finding: Doc, language: str) -> dict[str, Any]:
    view = audit_access.finding_view(who, finding)
    view["item_text"] = await _item_text(services, finding, language)
    view["appeal_until"] = commands.appeal_until(finding, services.settings.appeal_window_days)
    return FindingPublic.model_validate(view).model_dump(mode="json")


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
    scope = access.finding_scope(who)
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
    language = report_language(q.lang, request.headers.get("Accept-Language"), who.language)
    items = [await finding_public(services, who, d, language) for d in docs]
    return json_response({"items": items, "next_cursor": cursor})


@router.post(
    "/api/v1/findings/{finding_id}/appeal",
    summary="Appeal a finding of a released audit",
    body=AppealCreate,
    response=AppealPublic,
    status=201,
    roles=access.BRANCH_ROLES,
    extra_responses={200: "Replayed Idempotency-Key", 409: "Already appealed, decided or too late"},
)
async def file_appeal(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await body_of(request, AppealCreate)
    command = commands.FileAppeal(
        finding_id=match_info(request, "finding_id"),
        reason=body.reason,
        photo_ids=body.photo_ids,
        idempotency_key=request.headers.get("Idempotency-Key", "").strip()[:200] or None,
    )
    filed = await commands.file_appeal(services, authz.principal(request), command, origin=origin(request))
    return json_response(
        AppealPublic.model_validate(store.public_appeal(filed.appeal)), status=201 if filed.created else 200
    )


@router.post(
    "/api/v1/appeals/{appeal_id}/decision",
    summary="Uphold or overturn an appeal (overturn re-scores)",
    body=AppealDecision,
    response=AppealPublic,
    roles=access.REVIEWERS,
    extra_responses={409: "Already decided"},
)
async def decide_appeal(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await body_of(request, AppealDecision)
    command = commands.DecideAppeal(match_info(request, "appeal_id"), body.outcome, body.comment)
    decided = await commands.decide_appeal(services, authz.principal(request), command, origin=origin(request))
    return json_response(AppealPublic.model_validate(store.public_appeal(decided)))


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
    scope = access.appeal_scope(who)
    wanted = {k: v for k, v in {"status": q.status, "branch_id": q.branch_id}.items() if v}
    filters = _merge(wanted, scope) if scope is not None else None
    if filters is None:
        return json_response({"items": [], "next_cursor": None})
    docs, cursor = await store.appeals_page(services.db, filters, q.limit, q.cursor)
    items = [AppealPublic.model_validate(store.public_appeal(d)).model_dump(mode="json") for d in docs]
    return json_response({"items": items, "next_cursor": cursor})
