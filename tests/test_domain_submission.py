"""What a submission stores, without a database: findings from a score result, the result document,
finding counts, the freezing and returning changes, the submit response."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas.checklist import Checklist
from server.domain.audit_rules import Answer
from server.domain.scoring import score_audit
from server.domain.submission import (
    SUBMISSION_FIELDS,
    build_findings,
    finding_counts,
    finding_id,
    result_document,
    returned_changes,
    submit_result,
    submitted_changes,
)
from tests.audit_factories import PASSING_VALUES, checklist_definition

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
# Two failed items (hall_clean, atm_working) and a low rating; no free-text comment.
VALUES: dict[str, Any] = {
    **{k: v for k, v in PASSING_VALUES.items() if k != "comments"},
    "hall_clean": False,
    "signage": 3,
    "atm_working": False,
}


def audit() -> dict[str, Any]:
    answers = {k: {"value": v, "na": False, "note": None, "answered_at": NOW} for k, v in VALUES.items()}
    answers["badge_worn"] = {**answers["badge_worn"], "fixed_on_spot": True}
    answers["hall_clean"]["note"] = "dusty"
    return {
        "_id": "audit-1",
        "branch_id": "b1",
        "region_id": "r1",
        "program_id": None,
        "checklist_key": "test-visit",
        "checklist_version": 1,
        "auditor_id": "u1",
        "covert": True,
        "status": "in_progress",
        "answers": answers,
    }


def scored_findings() -> tuple[Any, list[dict[str, Any]]]:
    checklist = Checklist.model_validate(checklist_definition())
    doc = audit()
    scored = score_audit(checklist, {k: Answer(value=v) for k, v in VALUES.items()})
    findings = build_findings(doc, checklist, scored, {"hall_clean": ["p1"]}, NOW, submission=2)
    return scored, findings


def test_build_findings_one_per_failed_item_with_answer_photos_and_stable_ids() -> None:
    _, findings = scored_findings()
    by_item = {f["item_id"]: f for f in findings}
    assert sorted(by_item) == ["atm_working", "hall_clean", "signage"]
    hall = by_item["hall_clean"]
    assert hall["_id"] == finding_id("audit-1", "hall_clean", 2) != finding_id("audit-1", "hall_clean", 1)
    assert hall["severity"] == "major" and hall["section_id"] == "environment" and hall["photo_ids"] == ["p1"]
    assert hall["answer"] == {"value": False, "na": False, "note": "dusty"} and hall["covert"] is True
    assert by_item["atm_working"]["critical"] is True and by_item["atm_working"]["severity"] == "critical"
    assert all(f["status"] == "open" and f["created_at"] == NOW and f["released_at"] is None for f in findings)


def test_finding_counts_count_open_findings_per_severity() -> None:
    _, findings = scored_findings()
    assert finding_counts(findings) == {"minor": 1, "major": 1, "critical": 1}
    findings[0]["status"] = "overturned"
    assert sum(finding_counts(findings).values()) == 2
    assert finding_counts([]) == {"minor": 0, "major": 0, "critical": 0}


def test_result_document_and_submitted_changes() -> None:
    scored, findings = scored_findings()
    result = result_document(scored, findings)
    assert result["rules_version"] == scored.rules_version and len(result["breakdown"]) == 12
    expected = [{"id": f["_id"], "item_id": f["item_id"], "severity": f["severity"]} for f in findings]
    assert result["findings"] == expected
    changes = submitted_changes(scored, findings, NOW, 2)
    assert changes["status"] == "submitted" and changes["submitted_at"] == NOW and changes["submissions"] == 2
    assert changes["grade"] == "F" and changes["critical_failed"] is True and changes["result"] == result


def test_submit_result_reads_a_frozen_audit() -> None:
    scored, findings = scored_findings()
    frozen = {**audit(), **submitted_changes(scored, findings, NOW, 1)}
    view = submit_result(frozen)
    assert view["audit_id"] == "audit-1" and view["status"] == "submitted" and view["score"] == scored.score
    assert [s["id"] for s in view["sections"]] == ["environment", "service"]
    assert len(view["findings"]) == 3
    empty = submit_result({"_id": "a", "status": "in_progress"})
    assert empty["sections"] == [] and empty["findings"] == [] and empty["critical_failed"] is False


def test_returned_changes_reset_counts_and_name_the_fields_to_clear() -> None:
    changes = returned_changes("blurred", NOW)
    assert changes["status"] == "returned" and changes["returned_comment"] == "blurred"
    assert changes["finding_counts"] == {"minor": 0, "major": 0, "critical": 0}
    assert set(SUBMISSION_FIELDS) == {"result", "score", "grade", "critical_failed", "submitted_at"}
