"""Gathers what an audit PDF shows, filtered for the reader, from the database and GridFS."""

from __future__ import annotations

from typing import Any

from server.context import Services
from server.db import Doc
from server.domain import audit_access
from server.http.authz import MYSTERY_SHOPPER, Principal
from server.images.executor import run_image_work
from server.images.thumbnails import make_thumbnail
from server.reports.pdf import MAX_THUMBNAILS_PER_FINDING, AuditReportData, FindingEntry, SectionEntry
from server.storage import reports

THUMBNAIL_SIZE = "320"


def localized(text: Any, language: str, fallback: str) -> str:
    """A LocalizedText as stored ({"zh-CN": ..., "en": ..., "es": ...}) in one language."""
    if isinstance(text, dict):
        return str(text.get(language) or text.get("en") or next(iter(text.values()), fallback))
    return str(text) if text else fallback


def auditor_label(who: Principal, audit: Doc, key: bytes) -> str:
    """The auditor as the reader may see them: branch roles get a pseudonym for a covert visit."""
    view = audit_access.auditor_view(who, audit, key)
    if audit_access.is_branch_view(who) and audit.get("auditor_role") == MYSTERY_SHOPPER:
        view = {
            "pseudonym": audit_access.pseudonym(str(audit.get("auditor_id")), key),
            "role": MYSTERY_SHOPPER,
        }
    name = view.get("pseudonym") or view.get("name") or view.get("id") or "-"
    return f"{name} ({view.get('role') or '-'})"


def pseudonym_key(services: Services) -> bytes:
    return services.pseudonym_key


async def thumbnail_of(services: Services, photo: Doc) -> bytes | None:
    """The stored 320 px thumbnail, or one made from the original when it has none."""
    thumb_id = (photo.get("thumbnails") or {}).get(THUMBNAIL_SIZE)
    if thumb_id is not None:
        data = await reports.gridfs_bytes(services.db, thumb_id)
        if data:
            return data
    if photo.get("gridfs_id") is None:
        return None
    original = await reports.gridfs_bytes(services.db, photo["gridfs_id"])
    if not original:
        return None
    return await run_image_work(services.shared, make_thumbnail, original, int(THUMBNAIL_SIZE))


async def build_report_data(services: Services, who: Principal, audit: Doc, language: str) -> AuditReportData:
    db = services.db
    branch = await db.branches.find_one({"_id": audit["branch_id"]}, {"code": 1, "name": 1, "timezone": 1}) or {}
    region = await db.regions.find_one({"_id": audit.get("region_id")}, {"code": 1, "name": 1}) or {}
    definition = await reports.checklist_definition(db, audit["checklist_key"], int(audit["checklist_version"])) or {}
    section_titles: dict[str, str] = {}
    item_texts: dict[str, str] = {}
    for section in definition.get("sections") or []:
        section_titles[section["id"]] = localized(section.get("title"), language, section["id"])
        for item in section.get("items") or []:
            item_texts[item["id"]] = localized(item.get("text"), language, item["id"])
    findings = await reports.findings_of(db, audit["_id"])
    rectifications = {r["finding_id"]: r for r in await reports.rectifications_of(db, audit["_id"])}
    entries = []
    for finding in findings:
        rect = rectifications.get(finding["_id"])
        photo_ids = list(finding.get("photo_ids") or [])[:MAX_THUMBNAILS_PER_FINDING]
        thumbnails = []
        for photo in await reports.photo_documents(db, photo_ids) if photo_ids else []:
            data = await thumbnail_of(services, photo)
            if data:
                thumbnails.append(data)
        entries.append(
            FindingEntry(
                item_text=item_texts.get(finding["item_id"]) or str(finding["item_id"]),
                section_title=section_titles.get(finding.get("section_id") or "", finding.get("section_id") or "-"),
                severity=finding.get("severity") or "minor",
                status=finding.get("status") or "open",
                note=(finding.get("answer") or {}).get("note"),
                rectification_status=rect.get("status") if rect else None,
                rectification_due=rect.get("due_at") if rect else None,
                thumbnails=thumbnails,
            )
        )
    result = audit.get("result") or {}
    sections = [
        SectionEntry(
            title=section_titles.get(str(s.get("id")), str(s.get("id"))),
            score=s.get("score"),
            points=s.get("points"),
            max=s.get("max"),
        )
        for s in result.get("sections") or []
    ]
    return AuditReportData(
        language=language,
        audit_id=audit["_id"],
        branch=f"{branch.get('code', '')} {branch.get('name', audit['branch_id'])}".strip(),
        region=f"{region.get('code', '')} {region.get('name', audit.get('region_id') or '-')}".strip(),
        timezone=branch.get("timezone") or "UTC",
        checklist_key=audit["checklist_key"],
        checklist_version=int(audit["checklist_version"]),
        checklist_title=localized(definition.get("title"), language, audit["checklist_key"]),
        status=audit.get("status") or "-",
        released_at=audit.get("released_at"),
        auditor=auditor_label(who, audit, pseudonym_key(services)),
        score=audit.get("score"),
        grade=audit.get("grade"),
        critical_failed=bool(audit.get("critical_failed")),
        sections=sections,
        findings=entries,
        generated_at=services.clock.now(),
    )
