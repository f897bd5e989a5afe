"""Export rows: the history filters as a query, and audits/findings flattened to columns for one reader."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from schemas.audits import AuditQuery
from server.db import Database, Doc
from server.domain import audit_access
from server.http import authz
from server.reports.pdf_data import auditor_label, localized
from server.storage import audits as audit_storage
from server.storage import reports

AUDIT_EXPORT_BATCH = 500  # audits fetched per round trip, and per findings lookup

_AUDIT_COLUMNS = [
    "audit_id",
    "branch_code",
    "branch_name",
    "region_code",
    "region_name",
    "program_id",
    "checklist_key",
    "checklist_version",
    "channel",
    "covert",
    "status",
    "auditor",
    "visit_date",
    "started_at",
    "submitted_at",
    "released_at",
    "score",
    "grade",
    "critical_failed",
    "findings_minor",
    "findings_major",
    "findings_critical",
    "open_rectifications",
    "flags",
]
_FINDING_COLUMNS = [
    "finding_id",
    "audit_id",
    "branch_code",
    "branch_name",
    "region_code",
    "checklist_key",
    "checklist_version",
    "section_id",
    "item_id",
    "item_text",
    "severity",
    "critical",
    "status",
    "fixed_on_spot",
    "answer_value",
    "answer_note",
    "photos",
    "released_at",
    "auditor",
    "audit_score",
    "audit_grade",
]
# Exact visit times and anti-fraud flags are head-office information (see domain.audit_access.audit_row).
_HEAD_OFFICE_ONLY = frozenset({"started_at", "submitted_at", "flags"})


def audit_columns(who: authz.Principal) -> list[str]:
    if audit_access.is_branch_view(who):
        return [c for c in _AUDIT_COLUMNS if c not in _HEAD_OFFICE_ONLY]
    return list(_AUDIT_COLUMNS)


def finding_columns(who: authz.Principal) -> list[str]:
    return list(_FINDING_COLUMNS)


def export_filters(who: authz.Principal, q: AuditQuery) -> dict[str, Any]:
    """The history filters of GET /api/v1/audits within the caller's scope (checked by the caller)."""
    filters: dict[str, Any] = dict(authz.branch_scope_filter(who))
    for field in (
        "branch_id",
        "region_id",
        "program_id",
        "checklist_key",
        "checklist_version",
        "grade",
        "critical_failed",
    ):
        value = getattr(q, field)
        if value is not None:
            filters[field] = value
    auditor = q.auditor_id or q.inspector
    if auditor:
        filters["auditor_id"] = auditor
    if q.status:
        filters["status"] = q.status
    if audit_access.is_branch_view(who):
        # branch roles see released audits only; asking for another status matches nothing
        filters["status"] = "released" if q.status in (None, "released") else {"$in": []}
    score: dict[str, float] = {}
    if q.min_score is not None:
        score["$gte"] = q.min_score
    if q.max_score is not None:
        score["$lte"] = q.max_score
    if score:
        filters["score"] = score
    if q.has_flag:
        filters["flags"] = {"$exists": True, "$ne": []} if q.has_flag == "any" else q.has_flag
    filters.update(audit_storage.history_bounds(q.from_, q.to, None))
    return filters


async def history_cursor(
    db: Database, filters: dict[str, Any], batch_size: int, now: datetime
) -> AsyncIterator[Doc]:
    """Every matching audit, newest first, in the history listing's index-bounded windows (a row's fields only)."""
    async for audit in audit_storage.history_all(db, filters, audit_storage.HISTORY_ROW, batch_size, now):
        yield audit


class ExportRows:
    """Turns audits and findings into export rows for one reader, caching names and checklist texts."""

    def __init__(self, db: Database, who: authz.Principal, pseudonym_key: bytes, language: str) -> None:
        self.db = db
        self.who = who
        self.key = pseudonym_key
        self.language = language
        self.branches: dict[str, Doc] = {}
        self.regions: dict[str, Doc] = {}
        self.item_texts: dict[tuple[str, int], dict[str, str]] = {}

    async def _org(self, audit: Doc) -> tuple[Doc, Doc]:
        branch_id, region_id = audit["branch_id"], audit.get("region_id") or ""
        if branch_id not in self.branches:
            self.branches[branch_id] = (await reports.names(self.db, "branches", [branch_id])).get(branch_id, {})
        if region_id not in self.regions:
            self.regions[region_id] = (await reports.names(self.db, "regions", [region_id])).get(region_id, {})
        return self.branches[branch_id], self.regions[region_id]

    async def _texts(self, key: str, version: int) -> dict[str, str]:
        if (key, version) not in self.item_texts:
            definition = await reports.checklist_definition(self.db, key, version) or {}
            self.item_texts[(key, version)] = {
                item["id"]: localized(item.get("text"), self.language, item["id"])
                for section in definition.get("sections") or []
                for item in section.get("items") or []
            }
        return self.item_texts[(key, version)]

    async def audit_row(self, audit: Doc, columns: Sequence[str]) -> list[Any]:
        view = audit_access.audit_row(self.who, audit, self.key)
        branch, region = await self._org(audit)
        counts = view.get("finding_counts") or {}
        values: dict[str, Any] = {
            **view,
            "audit_id": audit["_id"],
            "branch_code": branch.get("code"),
            "branch_name": branch.get("name"),
            "region_code": region.get("code"),
            "region_name": region.get("name"),
            "auditor": auditor_label(self.who, audit, self.key),
            "findings_minor": counts.get("minor", 0),
            "findings_major": counts.get("major", 0),
            "findings_critical": counts.get("critical", 0),
        }
        return [values.get(column) for column in columns]

    async def finding_rows(self, audits: list[Doc], columns: Sequence[str]) -> AsyncIterator[list[Any]]:
        """Rows for the findings of a batch of audits, in the audits' order."""
        if not audits:
            return
        by_audit: dict[str, list[Doc]] = {a["_id"]: [] for a in audits}
        cursor = self.db.findings.find({"audit_id": {"$in": list(by_audit)}}, audit_storage.FINDING_FIELDS).hint(
            [("audit_id", 1), ("item_id", 1)])
        async for finding in cursor.batch_size(2000):
            by_audit[finding["audit_id"]].append(finding)
        for audit in audits:
            branch, region = await self._org(audit)
            texts = await self._texts(audit["checklist_key"], int(audit["checklist_version"]))
            auditor = auditor_label(self.who, audit, self.key)
            for finding in sorted(by_audit[audit["_id"]], key=lambda f: (f.get("section_id") or "", f["item_id"])):
                view = audit_access.finding_view(self.who, finding)
                answer = view.get("answer") or {}
                values: dict[str, Any] = {
                    **view,
                    "finding_id": finding["_id"],
                    "branch_code": branch.get("code"),
                    "branch_name": branch.get("name"),
                    "region_code": region.get("code"),
                    "checklist_version": audit.get("checklist_version"),
                    "item_text": texts.get(finding["item_id"], finding["item_id"]),
                    "answer_value": answer.get("value"),
                    "answer_note": answer.get("note"),
                    "photos": len(view.get("photo_ids") or []),
                    "auditor": auditor,
                    "audit_score": audit.get("score"),
                    "audit_grade": audit.get("grade"),
                }
                yield [values.get(column) for column in columns]
