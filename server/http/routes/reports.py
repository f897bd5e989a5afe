"""Scorecards, trends (JSON and PNG), repeat findings, rectification performance and the audit PDF.

Scorecards and trends read the `report_buckets` aggregates kept by the "aggregates" event handler; the
`program_id` filter is served by the buckets too (every bucket is keyed by program). Repeat findings and
rectification performance are computed on request from indexed reads of one scope and window.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import timedelta
from typing import Any

from aiohttp import web

from schemas.reports import (
    RectificationReport,
    RectificationReportQuery,
    RepeatFindingsQuery,
    RepeatFindingsReport,
    ReportPdfQuery,
    Scorecard,
    ScorecardQuery,
    Trend,
    TrendChartQuery,
    TrendQuery,
)
from server.context import Services
from server.db import Doc
from server.domain import access
from server.errors import Forbidden, NotFound
from server.http import authz
from server.http.api import ApiRouter, json_response, match_info, query_of
from server.keys import SERVICES
from server.reports import aggregates as agg
from server.reports.language import report_language
from server.reports.pdf_data import build_report_data
from server.reports.scope import scope_filter, visible_branch, visible_region
from server.storage import reports

router = ApiRouter("reports")
REPORT_READERS = authz.HEAD_OFFICE | authz.BRANCH_SIDE
REPEAT_WINDOW_DAYS = 365  # repeat findings look back a year unless `from` says otherwise


# --- scope ----------------------------------------------------------------------------------------


def _label(doc: Doc | None) -> tuple[str | None, str | None]:
    return (doc.get("code"), doc.get("name")) if doc else (None, None)


# --- scorecard ------------------------------------------------------------------------------------


async def _scorecard_scope(services: Services, who: authz.Principal, q: ScorecardQuery) -> dict[str, Any]:
    if q.branch_id:
        await visible_branch(services, who, q.branch_id)
    if q.region_id:
        await visible_region(services, who, q.region_id)
    if q.group_by == "branch":
        if who.role == authz.BRANCH_HEAD:
            return {"key": who.branch_id}
        if q.branch_id:
            return {"key": q.branch_id}
        region = q.region_id or (who.region_id if who.role == authz.REGIONAL_MANAGER else None)
        return {"scope": f"region:{region}"} if region else {}
    if q.group_by == "region":
        if who.role == authz.BRANCH_HEAD:
            raise Forbidden("A branch head's scorecards cover their own branch: use group_by=branch or section")
        region = q.region_id or (who.region_id if who.role == authz.REGIONAL_MANAGER else None)
        return {"key": region} if region else {}
    if who.role == authz.BRANCH_HEAD:
        return {"scope": f"branch:{who.branch_id}"}
    if q.branch_id:
        return {"scope": f"branch:{q.branch_id}"}
    region = q.region_id or (who.region_id if who.role == authz.REGIONAL_MANAGER else None)
    return {"scope": f"region:{region}" if region else "all"}


@router.get(
    "/api/v1/reports/scorecard",
    summary="Scorecard by branch, region or section (from the aggregates)",
    query=ScorecardQuery,
    response=Scorecard,
    roles=REPORT_READERS,
    extra_responses={403: "Branch heads cannot group by region", 404: "Branch or region outside scope"},
)
async def scorecard(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = authz.principal(request)
    q = query_of(request, ScorecardQuery)
    scope = await _scorecard_scope(services, who, q)
    rows = await reports.bucket_rows(
        services.db, q.group_by, agg.MONTH, scope, start=q.start(), end=q.end(), program_id=q.program_id
    )
    grouped = reports.group_summaries(rows, "key")
    lookup: dict[str, Doc] = {}
    if q.group_by in ("branch", "region"):
        collection = "branches" if q.group_by == "branch" else "regions"
        lookup = await reports.names(services.db, collection, list(grouped))
    items = []
    for key, (summary, sample) in grouped.items():
        code, name = _label(lookup.get(key))
        item: dict[str, Any] = {"key": key, "code": code, "name": name, **summary.public()}
        if q.group_by == "branch":
            item["region_id"] = sample.get("region_id")
        if q.group_by == "section":
            item.update(
                checklist_key=sample.get("checklist_key"),
                section_id=sample.get("section_id"),
                average_points_ratio=round(summary.points_sum / summary.max_sum, 4) if summary.max_sum else None,
            )
        items.append(item)
    total = agg.summarize(rows)
    items.sort(key=lambda i: (i["average_score"] is None, -(i["average_score"] or 0), i["key"]))
    body = Scorecard.model_validate(
        {
            "group_by": q.group_by,
            "from_": q.start(),
            "to": q.end(),
            "program_id": q.program_id,
            "items": items,
            "total": total.public(),
        }
    )
    return web.Response(text=body.model_dump_json(by_alias=True), content_type="application/json")


# --- trend ----------------------------------------------------------------------------------------


async def _trend_target(services: Services, who: authz.Principal, q: TrendQuery) -> tuple[str, dict[str, Any], str]:
    """(bucket dim, bucket filter, title) for the requested branch, region or the caller's default."""
    if q.branch_id:
        branch = await visible_branch(services, who, q.branch_id)
        return "branch", {"key": q.branch_id}, f"{branch.get('code')} {branch.get('name')}"
    if q.region_id:
        region = await visible_region(services, who, q.region_id)
        return "region", {"key": q.region_id}, f"{region.get('code')} {region.get('name')}"
    if who.role == authz.BRANCH_HEAD and who.branch_id:
        branch = await visible_branch(services, who, who.branch_id)
        return "branch", {"key": who.branch_id}, f"{branch.get('code')} {branch.get('name')}"
    if who.role == authz.REGIONAL_MANAGER and who.region_id:
        region = await visible_region(services, who, who.region_id)
        return "region", {"key": who.region_id}, f"{region.get('code')} {region.get('name')}"
    return "region", {}, "All regions"


async def _trend_points(services: Services, dim: str, target: dict[str, Any], q: TrendQuery) -> list[dict[str, Any]]:
    rows = await reports.bucket_rows(
        services.db, dim, q.interval, target, start=q.start(), end=q.end(), program_id=q.program_id
    )
    grouped = reports.group_summaries(rows, "period")
    points = [
        {"period": period, "period_start": sample["period_start"], **summary.public()}
        for period, (summary, sample) in grouped.items()
    ]
    return sorted(points, key=lambda p: p["period_start"])


@router.get(
    "/api/v1/reports/trend",
    summary="Score trend of a branch or region by month or ISO week",
    query=TrendQuery,
    response=Trend,
    roles=REPORT_READERS,
    extra_responses={404: "Branch or region outside scope"},
)
async def trend(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = authz.principal(request)
    q = query_of(request, TrendQuery)
    dim, target, _ = await _trend_target(services, who, q)
    points = await _trend_points(services, dim, target, q)
    key = target.get("key")
    body = {
        "branch_id": key if dim == "branch" else None,
        "region_id": key if dim == "region" else None,
        "interval": q.interval,
        "points": points,
    }
    return json_response(Trend.model_validate(body))


@router.get(
    "/api/v1/reports/trend.png",
    summary="Score trend chart (PNG) of a branch or region",
    query=TrendChartQuery,
    roles=REPORT_READERS,
    response_content_type="image/png",
    extra_responses={404: "Branch or region outside scope"},
)
async def trend_png(request: web.Request) -> web.Response:
    from server.reports.charts import TrendPointData, render_trend_png  # matplotlib loads on first chart only

    services = request.app[SERVICES]
    who = authz.principal(request)
    q = query_of(request, TrendChartQuery)
    dim, target, title = await _trend_target(services, who, q)
    points = await _trend_points(services, dim, target, q)
    data = [TrendPointData(p["period"], p["average_score"], p["audits"], p["critical_failed"]) for p in points]
    language = report_language(q.lang, request.headers.get("Accept-Language"), who.language)
    png = await asyncio.get_running_loop().run_in_executor(None, render_trend_png, title, data, language)
    return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "private, max-age=60"})


# --- repeat findings --------------------------------------------------------------------------------


@router.get(
    "/api/v1/reports/repeat-findings",
    summary="Checklist items failed at the same branch in consecutive released audits",
    query=RepeatFindingsQuery,
    response=RepeatFindingsReport,
    roles=REPORT_READERS,
    extra_responses={404: "Branch or region outside scope"},
)
async def repeat_findings(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = authz.principal(request)
    q = query_of(request, RepeatFindingsQuery)
    scope = await scope_filter(services, who, q.branch_id, q.region_id)
    start = q.start() or services.clock.now() - timedelta(days=REPEAT_WINDOW_DAYS)
    end = q.end()
    audits = await reports.released_audits(services.db, scope, start, end)
    if q.checklist_key:
        audits = [a for a in audits if a.get("checklist_key") == q.checklist_key]
    failed = await reports.failed_items(services.db, [a["_id"] for a in audits])
    sequences: dict[tuple[str, str], list[Doc]] = defaultdict(list)
    for audit in audits:
        sequences[(audit["branch_id"], audit.get("checklist_key") or "")].append(audit)
    by_id = {a["_id"]: a for a in audits}
    items: list[dict[str, Any]] = []
    for (branch_id, checklist_key), sequence in sequences.items():
        sequence.sort(key=lambda a: (a["released_at"], a["_id"]))
        for streak in agg.repeat_streaks([a["_id"] for a in sequence], failed, minimum=q.min_streak):
            if q.current_only and not streak.current:
                continue
            items.append(
                {
                    "branch_id": branch_id,
                    "region_id": sequence[0].get("region_id"),
                    "checklist_key": checklist_key,
                    "item_id": streak.item_id,
                    "streak": streak.length,
                    "current": streak.current,
                    "audit_ids": list(streak.audit_ids),
                    "first_released_at": by_id[streak.audit_ids[0]]["released_at"],
                    "last_released_at": by_id[streak.audit_ids[-1]]["released_at"],
                }
            )
    branches = await reports.names(services.db, "branches", sorted({i["branch_id"] for i in items}))
    regions = await reports.names(services.db, "regions", sorted({str(i["region_id"]) for i in items}))
    for item in items:
        item["branch_code"], item["branch_name"] = _label(branches.get(item["branch_id"]))
    items.sort(key=lambda i: (-i["streak"], i["branch_id"], i["item_id"]))
    body = RepeatFindingsReport.model_validate(
        {
            "from_": start,
            "to": end,
            "items": items,
            "total": len(items),
            "by_branch": _repeat_counts(items, "branch_id", branches),
            "by_region": _repeat_counts(items, "region_id", regions),
        }
    )
    return web.Response(text=body.model_dump_json(by_alias=True), content_type="application/json")


def _repeat_counts(items: list[dict[str, Any]], field: str, lookup: dict[str, Doc]) -> list[dict[str, Any]]:
    counts: dict[str, dict[str, Any]] = {}
    for item in items:
        key = str(item[field])
        entry = counts.setdefault(
            key,
            {
                "id": key,
                "name": _label(lookup.get(key))[1],
                "repeat_items": 0,
                "longest_streak": 0,
                "branch_ids": set(),
            },
        )
        entry["repeat_items"] += 1
        entry["longest_streak"] = max(entry["longest_streak"], item["streak"])
        entry["branch_ids"].add(item["branch_id"])
    result = []
    for entry in counts.values():
        branch_ids = entry.pop("branch_ids")
        result.append({**entry, "branches": len(branch_ids) if field == "region_id" else None})
    return sorted(result, key=lambda e: (-e["repeat_items"], e["id"]))


# --- rectification performance ------------------------------------------------------------------------


@router.get(
    "/api/v1/reports/rectifications",
    summary="Rectification performance: on-time closure, time to verify, overdue, escalations",
    query=RectificationReportQuery,
    response=RectificationReport,
    roles=REPORT_READERS,
    extra_responses={403: "Branch heads cannot group by region", 404: "Branch or region outside scope"},
)
async def rectification_performance(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = authz.principal(request)
    q = query_of(request, RectificationReportQuery)
    if q.group_by == "region" and who.role == authz.BRANCH_HEAD:
        raise Forbidden("A branch head's reports cover their own branch: use group_by=branch")
    scope = await scope_filter(services, who, q.branch_id, q.region_id)
    now = services.clock.now()
    field = "branch_id" if q.group_by == "branch" else "region_id"
    groups: dict[str, agg.RectificationStats] = defaultdict(agg.RectificationStats)
    total = agg.RectificationStats()
    async for rect in reports.rectifications(services.db, scope, q.start(), q.end()):
        groups[str(rect.get(field))].add(rect, now)
        total.add(rect, now)
    lookup = await reports.names(services.db, "branches" if field == "branch_id" else "regions", list(groups))
    items = []
    for key, stats in sorted(groups.items()):
        code, name = _label(lookup.get(key))
        items.append({"key": key, "code": code, "name": name, **stats.public()})
    return json_response(
        RectificationReport.model_validate(
            {"group_by": q.group_by, "as_of": now, "items": items, "total": total.public()}
        )
    )


# --- the audit PDF ---------------------------------------------------------------------------------


@router.get(
    "/api/v1/audits/{audit_id}/report.pdf",
    summary="The audit as a PDF: score by section, findings with photos, rectification status",
    query=ReportPdfQuery,
    roles=REPORT_READERS,
    response_content_type="application/pdf",
    extra_responses={404: "Unknown audit, or outside the caller's scope"},
)
async def audit_report_pdf(request: web.Request) -> web.Response:
    from server.reports.pdf import render_audit_pdf

    services = request.app[SERVICES]
    who = authz.principal(request)
    q = query_of(request, ReportPdfQuery)
    audit = await reports.audit_for_report(services.db, match_info(request, "audit_id"))
    if audit is None or not access.can_view_audit(who, audit):
        raise NotFound("Audit not found")
    language = report_language(q.lang, request.headers.get("Accept-Language"), who.language)
    data = await build_report_data(services, who, audit, language)
    pdf = await asyncio.get_running_loop().run_in_executor(None, render_audit_pdf, data)
    filename = f"audit-{audit['_id']}.pdf"
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )
