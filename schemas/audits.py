"""Request and response shapes of programs, assignments, audits, findings and appeals."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, RootModel, model_validator

from schemas.common import PageQuery, StrictModel
from schemas.org import Location

Channel = Literal["in_branch", "phone", "online"]
AuditStatus = Literal["in_progress", "submitted", "returned", "released"]
AssignmentStatus = Literal["planned", "in_progress", "submitted", "released", "cancelled"]
Severity = Literal["minor", "major", "critical"]
Outcome = Literal["pass", "fail", "na", "hidden", "unscored", "unanswered"]
ID = Field(min_length=1, max_length=64)


# --- programs and assignments ---------------------------------------------------------------------


class ProgramCreate(StrictModel):
    name: str = Field(min_length=1, max_length=200)
    checklist_key: str = Field(min_length=2, max_length=64)
    branch_ids: list[str] | None = Field(default=None, max_length=5000)
    region_ids: list[str] | None = Field(default=None, max_length=200)
    starts_on: date
    ends_on: date
    visits_per_branch: int = Field(default=1, ge=1, le=52)
    channel: Channel = "in_branch"
    covert: bool = False

    @model_validator(mode="after")
    def scope_and_period(self) -> ProgramCreate:
        if not self.branch_ids and not self.region_ids:
            raise ValueError("name branch_ids or region_ids")
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        if (self.ends_on - self.starts_on).days > 366:
            raise ValueError("a program lasts at most a year")
        return self


class ProgramPublic(BaseModel):
    id: str
    name: str
    checklist_key: str
    branch_ids: list[str]
    region_ids: list[str]
    starts_on: date
    ends_on: date
    visits_per_branch: int
    channel: Channel
    covert: bool
    created_by: str | None = None
    created_at: datetime
    assignments_generated: bool = False
    cancelled_at: datetime | None = None
    cancelled_reason: str | None = None


class AssignmentPublic(BaseModel):
    id: str
    program_id: str
    branch_id: str
    region_id: str
    checklist_key: str
    channel: Channel
    covert: bool
    window_start: datetime
    window_end: datetime
    status: AssignmentStatus
    audit_id: str | None = None
    assignee_id: str | None = Field(default=None, description="Shown to compliance and the assignee only")


class AssignmentList(BaseModel):
    items: list[AssignmentPublic]
    next_cursor: str | None = None


class AssignmentQuery(PageQuery):
    mine: bool = False
    program_id: str | None = Field(default=None, max_length=64)
    branch_id: str | None = Field(default=None, max_length=64)
    status: AssignmentStatus | None = None
    unassigned: bool = Field(default=False, description="Head office: only visits waiting for an assignee "
                                                        "(their person was deactivated)")


# --- audits ---------------------------------------------------------------------------------------


class CheckinLocation(Location):
    """Where the phone was at check-in, with the accuracy it reported (shown to reviewers)."""

    accuracy_m: float | None = Field(default=None, ge=0, le=100_000, description="The phone's reported GPS accuracy")


class AuditStart(StrictModel):
    assignment_id: str | None = Field(default=None, max_length=64)
    branch_id: str | None = Field(default=None, max_length=64)
    checklist_key: str = Field(min_length=2, max_length=64)
    checklist_version: int | None = Field(
        default=None,
        ge=1,
        description="A published version of checklist_key, for an audit started offline on a version that has "
        "since been superseded (default: the current version)",
    )
    started_at: AwareDatetime
    location: CheckinLocation | None = None

    @model_validator(mode="after")
    def one_target(self) -> AuditStart:
        if not self.assignment_id and not self.branch_id:
            raise ValueError("name assignment_id or branch_id")
        return self


class AnswerIn(StrictModel):
    item_id: str = Field(min_length=1, max_length=64)
    value: Any = None
    na: bool = False
    note: str | None = Field(default=None, max_length=4000)
    answered_at: AwareDatetime = Field(
        description="When the answer was given, by the phone's clock; per item the later one wins. Phones' clocks "
        "are wrong: a time more than 2 minutes ahead of the server counts as the time the server received it, and "
        "one more than 2 minutes before the audit started counts as the start; either flags the audit "
        "(answer_clock_ahead, answer_clock_behind) for its reviewer and keeps the phone's time beside the answer."
    )
    fixed_on_spot: bool = False


class AnswerBatch(RootModel[list[AnswerIn]]):
    """A batch of answers from the phone, in any order; replays are harmless."""


class Progress(BaseModel):
    answered: int
    required: int
    missing_items: list[str]
    missing_photos: list[str]
    complete: bool


class AnswersResult(BaseModel):
    audit_id: str
    status: AuditStatus
    applied: int = Field(description="Answers that replaced an older version (0 for a replayed batch)")
    progress: Progress


class SectionResult(BaseModel):
    id: str
    score: float | None
    max: float
    points: float | None = None


class FindingBrief(BaseModel):
    id: str
    item_id: str
    severity: Severity


class SubmitResult(BaseModel):
    audit_id: str
    status: AuditStatus
    score: float | None
    grade: str | None
    critical_failed: bool
    sections: list[SectionResult]
    findings: list[FindingBrief]


class ReturnRequest(StrictModel):
    comment: str = Field(min_length=1, max_length=4000)


class AuditPublic(BaseModel):
    """An audit as the caller may see it; branch roles get a redacted subset."""

    id: str
    branch_id: str
    region_id: str
    program_id: str | None = None
    assignment_id: str | None = None
    checklist_key: str
    checklist_version: int
    channel: Channel
    covert: bool
    status: AuditStatus
    auditor: dict[str, Any]
    visit_date: date | None = None
    started_at: datetime | None = None
    submitted_at: datetime | None = None
    released_at: datetime | None = None
    checkin: dict[str, Any] | None = None
    answers: dict[str, Any] = Field(default_factory=dict)
    returned_comment: str | None = None
    score: float | None = None
    grade: str | None = None
    critical_failed: bool | None = None
    result: dict[str, Any] | None = None
    finding_counts: dict[str, int] = Field(default_factory=dict)
    open_rectifications: int = 0
    flags: list[str] | None = None
    progress: Progress | None = None
    findings: list[dict[str, Any]] | None = None
    appeals: list[dict[str, Any]] | None = None
    rectifications: list[dict[str, Any]] | None = None
    photos: dict[str, list[str]] | None = None
    trail: list[dict[str, Any]] | None = None
    checklist: dict[str, Any] | None = None


class AuditRow(BaseModel):
    id: str
    branch_id: str
    region_id: str
    program_id: str | None = None
    checklist_key: str
    checklist_version: int
    channel: Channel
    covert: bool
    status: AuditStatus
    auditor: dict[str, Any]
    visit_date: date | None = None
    started_at: datetime | None = None
    submitted_at: datetime | None = None
    released_at: datetime | None = None
    score: float | None = None
    grade: str | None = None
    critical_failed: bool | None = None
    finding_counts: dict[str, int] = Field(default_factory=dict)
    open_rectifications: int = 0
    flags: list[str] | None = None


class AuditList(BaseModel):
    items: list[AuditRow]
    next_cursor: str | None = None


class AuditQuery(PageQuery):
    branch_id: str | None = Field(default=None, max_length=64)
    region_id: str | None = Field(default=None, max_length=64)
    program_id: str | None = Field(default=None, max_length=64)
    inspector: str | None = Field(default=None, max_length=64, description="auditor user id")
    auditor_id: str | None = Field(default=None, max_length=64)
    checklist_key: str | None = Field(default=None, max_length=64)
    checklist_version: int | None = Field(default=None, ge=1)
    status: AuditStatus | None = None
    from_: AwareDatetime | None = Field(default=None, alias="from")
    to: AwareDatetime | None = None
    min_score: float | None = Field(default=None, ge=0, le=100)
    max_score: float | None = Field(default=None, ge=0, le=100)
    grade: str | None = Field(default=None, max_length=3)
    critical_failed: bool | None = None
    has_flag: str | None = Field(default=None, max_length=64, description="a flag name, or 'any'")


# --- findings and appeals -------------------------------------------------------------------------


class FindingPublic(BaseModel):
    id: str
    audit_id: str
    branch_id: str
    region_id: str
    program_id: str | None = None
    checklist_key: str
    item_id: str
    section_id: str
    severity: Severity
    critical: bool
    answer: dict[str, Any]
    photo_ids: list[str]
    status: Literal["open", "overturned"]
    fixed_on_spot: bool
    created_at: datetime | None = None
    released_at: datetime | None = None
    pending_appeal_id: str | None = None
    item_text: str | None = Field(default=None, description="The item's text in the reader's language")
    appeal_until: datetime | None = Field(default=None, description="When the appeal window closes (released only)")


class FindingList(BaseModel):
    items: list[FindingPublic]
    next_cursor: str | None = None


class FindingQuery(PageQuery):
    lang: Literal["zh-CN", "en", "es"] | None = Field(
        default=None, description="default: Accept-Language, then the reader's"
    )
    audit_id: str | None = Field(default=None, max_length=64)
    branch_id: str | None = Field(default=None, max_length=64)
    severity: Severity | None = None
    status: Literal["open", "overturned"] | None = None


class AppealCreate(StrictModel):
    reason: str = Field(min_length=1, max_length=4000)
    photo_ids: list[str] = Field(default_factory=list, max_length=20)


class AppealDecision(StrictModel):
    outcome: Literal["upheld", "overturned"]
    comment: str = Field(min_length=1, max_length=4000)


class AppealPublic(BaseModel):
    id: str
    finding_id: str
    audit_id: str
    branch_id: str
    region_id: str
    reason: str
    photo_ids: list[str]
    status: Literal["pending", "upheld", "overturned"]
    filed_by: str
    filed_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str | None = None


class AppealList(BaseModel):
    items: list[AppealPublic]
    next_cursor: str | None = None


class AppealQuery(PageQuery):
    status: Literal["pending", "upheld", "overturned"] | None = None
    branch_id: str | None = Field(default=None, max_length=64)
