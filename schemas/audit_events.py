"""Event payloads of audits, findings and appeals (see docs/DATA-MODEL.md for the table)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from schemas.events import event

Severity = Literal["minor", "major", "critical"]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


@event("audit.started")
class AuditStarted(_Payload):
    audit_id: str
    branch_id: str
    checklist_key: str
    checklist_version: int


@event("audit.submitted")
class AuditSubmitted(_Payload):
    audit_id: str
    branch_id: str
    region_id: str
    score: float | None
    grade: str | None
    critical_failed: bool
    finding_ids: list[str]


@event("audit.returned")
class AuditReturned(_Payload):
    audit_id: str
    branch_id: str
    comment: str


@event("audit.released")
class AuditReleased(_Payload):
    audit_id: str
    branch_id: str
    region_id: str
    program_id: str | None
    checklist_key: str
    checklist_version: int
    score: float | None
    grade: str | None
    critical_failed: bool
    finding_ids: list[str]
    released_at: datetime


@event("audit.rescored")
class AuditRescored(_Payload):
    audit_id: str
    branch_id: str
    old_score: float | None
    new_score: float | None
    old_grade: str | None
    new_grade: str | None
    reason: str


@event("finding.created")
class FindingCreated(_Payload):
    finding_id: str
    audit_id: str
    branch_id: str
    item_id: str
    severity: Severity
    fixed_on_spot: bool


@event("finding.withdrawn")
class FindingWithdrawn(_Payload):
    """The audit was returned to its auditor: the finding's submission is void (the next one creates anew)."""

    finding_id: str
    audit_id: str
    branch_id: str
    item_id: str


@event("appeal.filed")
class AppealFiled(_Payload):
    appeal_id: str
    finding_id: str
    audit_id: str
    branch_id: str


@event("appeal.decided")
class AppealDecided(_Payload):
    appeal_id: str
    finding_id: str
    audit_id: str
    branch_id: str
    outcome: Literal["upheld", "overturned"]
