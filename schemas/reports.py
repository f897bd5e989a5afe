"""Report and export shapes: scorecards, trends, repeat findings, rectification performance, exports."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Interval = Literal["month", "week"]
ReportLanguage = Literal["zh-CN", "en", "es"]


class ReportQuery(BaseModel):
    """Common to report queries: `from`/`to` are dates (inclusive) or RFC 3339 times."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: datetime | date | None = Field(default=None, alias="from")
    to: datetime | date | None = None

    def start(self) -> datetime | None:
        return as_start(self.from_)

    def end(self) -> datetime | None:
        return as_end(self.to)


def as_start(value: datetime | date | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time.min, tzinfo=UTC)


def as_end(value: datetime | date | None) -> datetime | None:
    """A date means the whole day: up to its last microsecond."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value + timedelta(days=1), time.min, tzinfo=UTC) - timedelta(microseconds=1)


class ScorecardQuery(ReportQuery):
    group_by: Literal["branch", "region", "section"] = "branch"
    program_id: str | None = Field(default=None, max_length=100)
    branch_id: str | None = Field(default=None, max_length=100, description="section scorecard of one branch")
    region_id: str | None = Field(default=None, max_length=100, description="only this region's branches/sections")


class GradeSummary(BaseModel):
    audits: int
    average_score: float | None
    grades: dict[str, int]
    critical_failed: int
    critical_failure_rate: float | None


class ScorecardRow(GradeSummary):
    key: str = Field(description="branch id, region id, or '<checklist_key>:<section_id>'")
    code: str | None = None
    name: str | None = None
    region_id: str | None = None
    checklist_key: str | None = None
    section_id: str | None = None
    average_points_ratio: float | None = Field(default=None, description="sections: points / max points")


class Scorecard(BaseModel):
    group_by: str
    from_: datetime | None = Field(default=None, serialization_alias="from")
    to: datetime | None = None
    program_id: str | None = None
    granularity: str = Field(default="month", description="from/to are rounded out to whole months")
    items: list[ScorecardRow]
    total: GradeSummary


class TrendQuery(ReportQuery):
    branch_id: str | None = Field(default=None, max_length=100)
    region_id: str | None = Field(default=None, max_length=100)
    interval: Interval = "month"
    program_id: str | None = Field(default=None, max_length=100)


class TrendChartQuery(TrendQuery):
    lang: ReportLanguage | None = None


class TrendPoint(GradeSummary):
    period: str
    period_start: datetime


class Trend(BaseModel):
    branch_id: str | None
    region_id: str | None
    interval: str
    points: list[TrendPoint]


class RepeatFindingsQuery(ReportQuery):
    branch_id: str | None = Field(default=None, max_length=100)
    region_id: str | None = Field(default=None, max_length=100)
    checklist_key: str | None = Field(default=None, max_length=64)
    min_streak: int = Field(default=2, ge=2, le=50)
    current_only: bool = Field(default=False, description="only streaks that reach the branch's latest audit")


class RepeatFinding(BaseModel):
    branch_id: str
    branch_code: str | None = None
    branch_name: str | None = None
    region_id: str | None
    checklist_key: str
    item_id: str
    streak: int
    current: bool
    audit_ids: list[str]
    first_released_at: datetime
    last_released_at: datetime


class RepeatCount(BaseModel):
    id: str
    name: str | None = None
    repeat_items: int
    longest_streak: int
    branches: int | None = None


class RepeatFindingsReport(BaseModel):
    from_: datetime | None = Field(default=None, serialization_alias="from")
    to: datetime | None = None
    items: list[RepeatFinding]
    by_branch: list[RepeatCount]
    by_region: list[RepeatCount]
    total: int


class RectificationReportQuery(ReportQuery):
    group_by: Literal["branch", "region"] = "branch"
    branch_id: str | None = Field(default=None, max_length=100)
    region_id: str | None = Field(default=None, max_length=100)


class RectificationPerformance(BaseModel):
    total: int
    verified: int
    open: int
    cancelled: int
    on_time_closure_rate: float | None = Field(description="verified by due_at / (verified + overdue now)")
    verified_on_time: int
    mean_hours_to_verify: float | None
    p90_hours_to_verify: float | None
    overdue_now: int
    escalated: int
    max_escalation_level: int


class RectificationRow(RectificationPerformance):
    key: str
    code: str | None = None
    name: str | None = None


class RectificationReport(BaseModel):
    group_by: str
    as_of: datetime
    items: list[RectificationRow]
    total: RectificationPerformance


class ReportPdfQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lang: ReportLanguage | None = None
