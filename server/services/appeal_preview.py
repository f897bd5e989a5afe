"""What overturning a pending appeal would do to its audit's score, before compliance confirms: the same
scoring as the decision (the audit's own rules version, overturned findings counting as passed), no writes."""

from __future__ import annotations

from dataclasses import dataclass

from server.context import Services
from server.domain.access import Principal
from server.domain.submission import rescored
from server.services import found
from server.services.appeals import pending_appeal
from server.storage import audits as store


@dataclass(frozen=True)
class RescorePreview:
    appeal_id: str
    audit_id: str
    item_id: str
    current_score: float | None
    current_grade: str | None
    current_critical_failed: bool | None
    score_if_overturned: float | None
    grade_if_overturned: str | None
    critical_failed_if_overturned: bool


async def preview_overturn(services: Services, caller: Principal, appeal_id: str) -> RescorePreview:
    """The audit's score now and if this pending appeal were overturned."""
    appeal, audit, checklist = await pending_appeal(services, caller, appeal_id)
    findings = await store.findings_of(services.db, audit["_id"], fields={"item_id": 1, "status": 1})
    overturned = {f["item_id"] for f in findings if f["status"] == "overturned"}
    appealed = found(next((f for f in findings if f["_id"] == appeal["finding_id"]), None), "Finding")
    overturned.add(appealed["item_id"])
    scored = rescored(checklist, audit, overturned)
    return RescorePreview(
        appeal_id=appeal["_id"],
        audit_id=audit["_id"],
        item_id=appealed["item_id"],
        current_score=audit.get("score"),
        current_grade=audit.get("grade"),
        current_critical_failed=audit.get("critical_failed"),
        score_if_overturned=scored.score,
        grade_if_overturned=scored.grade,
        critical_failed_if_overturned=scored.critical_failed,
    )
