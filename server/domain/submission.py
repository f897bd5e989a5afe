"""What a submission stores, without I/O: one finding per failed item, the result document, the finding
counts, the changes that freeze the audit, and the submission as the phone and reviewers see it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from schemas.checklist import Checklist, Item
from server.domain.access import Doc
from server.domain.audit_rules import answers_of
from server.domain.scoring import ScoreResult, score_audit

FINDING_NS = uuid.UUID("0f4f1c1e-6a55-4b9e-9c39-3b0f7f6f2a10")
SEVERITIES = ("minor", "major", "critical")


def finding_id(audit_id: str, item_id: str, submission: int) -> str:
    """Stable per audit, item and submission, so a retried submission derives the same findings."""
    return str(uuid.uuid5(FINDING_NS, f"{audit_id}:{item_id}:{submission}"))


def new_finding(
    audit: Doc,
    *,
    item: Item,
    section_id: str,
    answer: Doc,
    photo_ids: list[str],
    now: datetime,
    submission: int,
) -> Doc:
    """The one constructor of a stored finding: a failed, visible, scored item of a submitted audit."""
    return {
        "_id": finding_id(audit["_id"], item.id, submission),
        "audit_id": audit["_id"],
        "branch_id": audit["branch_id"],
        "region_id": audit["region_id"],
        "program_id": audit.get("program_id"),
        "checklist_key": audit["checklist_key"],
        "checklist_version": audit["checklist_version"],
        "item_id": item.id,
        "section_id": section_id,
        "severity": item.severity,
        "critical": item.critical,
        "answer": {
            "value": answer.get("value"),
            "na": bool(answer.get("na")),
            "note": answer.get("note"),
        },
        "photo_ids": photo_ids,
        "status": "open",
        "fixed_on_spot": bool(answer.get("fixed_on_spot")),
        "covert": bool(audit.get("covert")),
        "auditor_id": audit["auditor_id"],
        "created_at": now,
        "released_at": None,
        "pending_appeal_id": None,
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
        if item is None:
            raise ValueError(f"scored item {entry.item_id} is not in checklist {checklist.key}")
        findings.append(
            new_finding(
                audit,
                item=item,
                section_id=entry.section_id,
                answer=answers.get(entry.item_id) or {},
                photo_ids=photos.get(entry.item_id, []),
                now=now,
                submission=submission,
            )
        )
    return findings


def rescored(checklist: Checklist, audit: Doc, overturned: set[str]) -> ScoreResult:
    """The audit scored again with its own rules version, the items of overturned findings counting as
    passed (an appeal decided, or the preview of deciding one)."""
    return score_audit(
        checklist,
        answers_of(audit.get("answers")),
        branch_type=audit.get("branch_type"),
        channel=audit.get("channel"),
        overturned=overturned,
        rules_version=int((audit.get("result") or {}).get("rules_version", 1)),
    )


def result_document(scored: ScoreResult, findings: list[Doc]) -> dict[str, Any]:
    """The stored result: the score with its breakdown, and the findings it produced."""
    stored = scored.model_dump(mode="json")
    stored["findings"] = [{"id": f["_id"], "item_id": f["item_id"], "severity": f["severity"]} for f in findings]
    return stored


def finding_counts(findings: list[Doc]) -> dict[str, int]:
    """Open findings per severity."""
    counts = dict.fromkeys(SEVERITIES, 0)
    for f in findings:
        if f["status"] == "open":
            counts[f["severity"]] += 1
    return counts


def submitted_changes(
    scored: ScoreResult, findings: list[Doc], now: datetime, submission: int, *, status: str = "submitted"
) -> dict[str, Any]:
    """The fields that freeze a submitted audit (`status`: audit_rules.next_status(..., "submit"))."""
    return {
        "status": status,
        "submitted_at": now,
        "updated_at": now,
        "submissions": submission,
        "result": result_document(scored, findings),
        "score": scored.score,
        "grade": scored.grade,
        "critical_failed": scored.critical_failed,
        "finding_counts": finding_counts(findings),
    }


# Fields of a submission that a return to the auditor clears.
SUBMISSION_FIELDS = ("result", "score", "grade", "critical_failed", "submitted_at")


def returned_changes(comment: str, now: datetime, *, status: str = "returned") -> dict[str, Any]:
    """The fields a return to the auditor sets (it also clears SUBMISSION_FIELDS)."""
    return {
        "status": status,
        "returned_comment": comment,
        "returned_at": now,
        "updated_at": now,
        "finding_counts": dict.fromkeys(SEVERITIES, 0),
    }


def submit_result(audit: Doc) -> dict[str, Any]:
    """A submitted (or released) audit's result as the submit and release responses give it."""
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
