"""CSV and XLSX exports of the audit history (one row per audit, or one per finding), streamed.

Filters are those of GET /api/v1/audits and are split into the same windows
(`server.storage.audits.history_windows`), so an export is index scans whatever the filters."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import web

from schemas.audits import AuditQuery
from schemas.reports import ReportLanguage
from server.context import Services
from server.db import Doc
from server.domain import access
from server.http import authz
from server.http.api import ApiRouter, query_of
from server.keys import SERVICES
from server.reports import tables
from server.reports.exports import (
    AUDIT_EXPORT_BATCH,
    ExportRows,
    audit_columns,
    export_filters,
    finding_columns,
    history_cursor,
)
from server.reports.language import report_language
from server.reports.pdf_data import pseudonym_key
from server.reports.scope import scope_filter

router = ApiRouter("exports")
EXPORT_READERS = authz.HEAD_OFFICE | authz.BRANCH_SIDE


class AuditExportQuery(AuditQuery):
    """The history filters; `limit`/`cursor` are accepted for symmetry but an export has every row."""

    lang: ReportLanguage | None = None


def _filename(services: Services, kind: str, extension: str) -> str:
    return f"{kind}-{services.clock.now().strftime('%Y%m%d-%H%M%S')}.{extension}"


async def _prepare(
    request: web.Request,
) -> tuple[Services, authz.Principal, AuditExportQuery, dict[str, Any]]:
    services = request.app[SERVICES]
    who = authz.principal(request)
    q = query_of(request, AuditExportQuery)
    await scope_filter(services, who, q.branch_id, q.region_id)
    return services, who, q, export_filters(who, q)


async def _audit_rows(
    services: Services, who: authz.Principal, filters: dict[str, Any], columns: Sequence[str]
) -> AsyncIterator[list[Any]]:
    rows = ExportRows(services.db, who, pseudonym_key(services), "en")
    async for audit in history_cursor(services.db, filters, AUDIT_EXPORT_BATCH, services.clock.now()):
        if access.can_view_audit(who, audit):
            yield await rows.audit_row(audit, columns)


async def _finding_rows(
    services: Services, who: authz.Principal, filters: dict[str, Any], columns: Sequence[str], language: str
) -> AsyncIterator[list[Any]]:
    rows = ExportRows(services.db, who, pseudonym_key(services), language)
    batch: list[Doc] = []
    async for audit in history_cursor(services.db, filters, AUDIT_EXPORT_BATCH, services.clock.now()):
        if access.can_view_audit(who, audit):
            batch.append(audit)
        if len(batch) >= AUDIT_EXPORT_BATCH:
            async for row in rows.finding_rows(batch, columns):
                yield row
            batch = []
    async for row in rows.finding_rows(batch, columns):
        yield row


@router.get(
    "/api/v1/exports/audits.csv",
    summary="Audit history as CSV (streamed; same filters as GET /audits)",
    query=AuditExportQuery,
    roles=EXPORT_READERS,
    response_content_type="text/csv",
    extra_responses={404: "Branch or region outside scope"},
)
async def export_audits_csv(request: web.Request) -> web.StreamResponse:
    services, who, _, filters = await _prepare(request)
    columns = audit_columns(who)
    return await tables.stream_csv(
        request, _filename(services, "audits", "csv"), columns, _audit_rows(services, who, filters, columns)
    )


@router.get(
    "/api/v1/exports/audits.xlsx",
    summary="Audit history as XLSX (streamed; same filters as GET /audits)",
    query=AuditExportQuery,
    roles=EXPORT_READERS,
    response_content_type=tables.XLSX_MEDIA_TYPE,
    extra_responses={404: "Branch or region outside scope"},
)
async def export_audits_xlsx(request: web.Request) -> web.StreamResponse:
    services, who, _, filters = await _prepare(request)
    columns = audit_columns(who)
    return await tables.stream_xlsx(
        request,
        _filename(services, "audits", "xlsx"),
        "audits",
        columns,
        _audit_rows(services, who, filters, columns),
    )


@router.get(
    "/api/v1/exports/findings.csv",
    summary="Findings of the matching audits as CSV (streamed; same filters as GET /audits)",
    query=AuditExportQuery,
    roles=EXPORT_READERS,
    response_content_type="text/csv",
    extra_responses={404: "Branch or region outside scope"},
)
async def export_findings_csv(request: web.Request) -> web.StreamResponse:
    services, who, q, filters = await _prepare(request)
    language = report_language(q.lang, request.headers.get("Accept-Language"), who.language)
    columns = finding_columns(who)
    return await tables.stream_csv(
        request,
        _filename(services, "findings", "csv"),
        columns,
        _finding_rows(services, who, filters, columns, language),
    )


@router.get(
    "/api/v1/exports/findings.xlsx",
    summary="Findings of the matching audits as XLSX (streamed; same filters as GET /audits)",
    query=AuditExportQuery,
    roles=EXPORT_READERS,
    response_content_type=tables.XLSX_MEDIA_TYPE,
    extra_responses={404: "Branch or region outside scope"},
)
async def export_findings_xlsx(request: web.Request) -> web.StreamResponse:
    services, who, q, filters = await _prepare(request)
    language = report_language(q.lang, request.headers.get("Accept-Language"), who.language)
    columns = finding_columns(who)
    return await tables.stream_xlsx(
        request,
        _filename(services, "findings", "xlsx"),
        "findings",
        columns,
        _finding_rows(services, who, filters, columns, language),
    )
