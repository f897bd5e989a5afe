"""Scorecard and trend aggregates as plain arithmetic over audit documents (no I/O).

A released audit contributes one increment to each of its buckets: (branch, month), (branch, ISO week),
(region, month), (region, week) and, per section of its result, (section, month) at three scopes (all,
its region, its branch) so branch heads and regional managers get section scorecards of their own scope.
Every bucket is also keyed by the audit's program, so `program_id` filters are served from buckets too.

Scores are stored in hundredths as integers: adding and later subtracting a contribution (rescoring)
then returns exactly the numbers a full recomputation gives, which floats would not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from server.domain.rectification_rules import ACTIVE

Fields = dict[str, int]
Contribution = dict[str, Fields]  # bucket id -> field increments ("count", "score_sum", "grades.A", ...)

MONTH = "month"
WEEK = "week"
NO_PROGRAM = "-"


@dataclass(frozen=True)
class BucketMeta:
    """What a bucket is about; written once when the bucket is created."""

    dim: str  # branch | region | section
    key: str  # branch id, region id or "<checklist_key>:<section_id>"
    scope: str  # "all", "region:<id>" or "branch:<id>": whose scorecards it feeds
    interval: str
    period: str  # "2026-11" or "2026-W45"
    period_start: datetime
    program_id: str
    region_id: str | None = None
    branch_id: str | None = None
    checklist_key: str | None = None
    section_id: str | None = None

    @property
    def bucket_id(self) -> str:
        return "|".join((self.dim, self.scope, self.key, self.program_id, self.interval, self.period))

    def document(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "key": self.key,
            "scope": self.scope,
            "interval": self.interval,
            "period": self.period,
            "period_start": self.period_start,
            "program_id": self.program_id,
            "region_id": self.region_id,
            "branch_id": self.branch_id,
            "checklist_key": self.checklist_key,
            "section_id": self.section_id,
        }


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def month_of(moment: datetime) -> tuple[str, datetime]:
    """The calendar month (UTC) containing `moment`: its label and first instant."""
    m = as_utc(moment)
    return f"{m.year:04d}-{m.month:02d}", datetime(m.year, m.month, 1, tzinfo=UTC)


def week_of(moment: datetime) -> tuple[str, datetime]:
    """The ISO week (UTC, Monday first) containing `moment`: its label and first instant."""
    m = as_utc(moment)
    year, week, weekday = m.isocalendar()
    start = datetime(m.year, m.month, m.day, tzinfo=UTC) - timedelta(days=weekday - 1)
    return f"{year:04d}-W{week:02d}", start


def period_of(moment: datetime, interval: str) -> tuple[str, datetime]:
    return month_of(moment) if interval == MONTH else week_of(moment)


def centi(value: float | int | None) -> int:
    """A score in hundredths of a point, as an exact integer."""
    return round(float(value or 0) * 100)


def grade_field(grade: str | None) -> str:
    safe = "".join(ch for ch in str(grade or "none") if ch.isalnum() or ch in "+-_") or "none"
    return f"grades.{safe}"


def audit_contribution(audit: Mapping[str, Any]) -> tuple[Contribution, dict[str, BucketMeta]]:
    """The increments a released audit adds to its buckets (empty for any other status)."""
    if audit.get("status") != "released" or audit.get("released_at") is None:
        return {}, {}
    released_at: datetime = audit["released_at"]
    branch_id = str(audit["branch_id"])
    region_id = str(audit.get("region_id") or "")
    program = str(audit.get("program_id") or NO_PROGRAM)
    critical = 1 if audit.get("critical_failed") else 0
    headline: Fields = {
        "count": 1,
        "score_sum": centi(audit.get("score")),
        "critical_failed": critical,
        grade_field(audit.get("grade")): 1,
    }
    contribution: Contribution = {}
    metas: dict[str, BucketMeta] = {}

    def add(meta: BucketMeta, fields: Fields) -> None:
        contribution[meta.bucket_id] = dict(fields)
        metas[meta.bucket_id] = meta

    for interval in (MONTH, WEEK):
        period, start = period_of(released_at, interval)
        add(
            BucketMeta(
                "branch",
                branch_id,
                f"region:{region_id}",
                interval,
                period,
                start,
                program,
                region_id=region_id,
                branch_id=branch_id,
            ),
            headline,
        )
        add(
            BucketMeta("region", region_id, "all", interval, period, start, program, region_id=region_id),
            headline,
        )
    period, start = month_of(released_at)
    checklist_key = str(audit.get("checklist_key") or "")
    for section in (audit.get("result") or {}).get("sections") or []:
        section_id = str(section.get("id"))
        fields: Fields = {
            "count": 1,
            "score_sum": centi(section.get("score")),
            "points_sum": centi(section.get("points")),
            "max_sum": centi(section.get("max")),
            "critical_failed": critical,
            grade_field(audit.get("grade")): 1,
        }
        for scope in ("all", f"region:{region_id}", f"branch:{branch_id}"):
            add(
                BucketMeta(
                    "section",
                    f"{checklist_key}:{section_id}",
                    scope,
                    MONTH,
                    period,
                    start,
                    program,
                    region_id=region_id if scope != "all" else None,
                    branch_id=branch_id if scope.startswith("branch:") else None,
                    checklist_key=checklist_key,
                    section_id=section_id,
                ),
                fields,
            )
    return contribution, metas


def delta(old: Contribution, new: Contribution) -> Contribution:
    """What to add to the buckets to go from contribution `old` to `new` (zero fields left out)."""
    changes: Contribution = {}
    for bucket_id in old.keys() | new.keys():
        before, after = old.get(bucket_id, {}), new.get(bucket_id, {})
        fields = {name: after.get(name, 0) - before.get(name, 0) for name in before.keys() | after.keys()}
        fields = {name: value for name, value in fields.items() if value}
        if fields:
            changes[bucket_id] = fields
    return changes


def accumulate(totals: dict[str, Fields], contribution: Contribution) -> None:
    """Add a contribution into running bucket totals (used by the full recomputation)."""
    for bucket_id, fields in contribution.items():
        into = totals.setdefault(bucket_id, {})
        for name, value in fields.items():
            into[name] = into.get(name, 0) + value


def flatten_bucket(doc: Mapping[str, Any]) -> Fields:
    """A stored bucket's numbers as flat fields, zero counts dropped, for comparisons."""
    fields: Fields = {}
    for name in ("count", "score_sum", "points_sum", "max_sum", "critical_failed"):
        if doc.get(name):
            fields[name] = int(doc[name])
    for grade, count in (doc.get("grades") or {}).items():
        if count:
            fields[f"grades.{grade}"] = int(count)
    return fields


def normalized(totals: Mapping[str, Fields]) -> dict[str, Fields]:
    """Bucket totals without zero fields or empty buckets, so equal numbers compare equal."""
    result: dict[str, Fields] = {}
    for bucket_id, fields in totals.items():
        kept = {k: v for k, v in fields.items() if v}
        if kept.get("count"):
            result[bucket_id] = kept
    return result


@dataclass
class Summary:
    """Scorecard numbers over a set of buckets."""

    audits: int = 0
    score_sum: int = 0
    critical_failed: int = 0
    points_sum: int = 0
    max_sum: int = 0
    grades: dict[str, int] | None = None

    def add(self, bucket: Mapping[str, Any]) -> None:
        self.audits += int(bucket.get("count") or 0)
        self.score_sum += int(bucket.get("score_sum") or 0)
        self.critical_failed += int(bucket.get("critical_failed") or 0)
        self.points_sum += int(bucket.get("points_sum") or 0)
        self.max_sum += int(bucket.get("max_sum") or 0)
        grades = self.grades if self.grades is not None else {}
        for grade, count in (bucket.get("grades") or {}).items():
            if count:
                grades[grade] = grades.get(grade, 0) + int(count)
        self.grades = grades

    @property
    def average_score(self) -> float | None:
        return round(self.score_sum / self.audits / 100, 2) if self.audits else None

    def public(self) -> dict[str, Any]:
        return {
            "audits": self.audits,
            "average_score": self.average_score,
            "grades": dict(sorted((self.grades or {}).items())),
            "critical_failed": self.critical_failed,
            "critical_failure_rate": round(self.critical_failed / self.audits, 4) if self.audits else None,
        }


def summarize(buckets: Iterable[Mapping[str, Any]]) -> Summary:
    summary = Summary()
    for bucket in buckets:
        summary.add(bucket)
    return summary


# --- repeat findings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Streak:
    """One checklist item failed in `len(audit_ids)` consecutive released audits of a branch."""

    item_id: str
    audit_ids: tuple[str, ...]
    current: bool  # the streak reaches the branch's latest audit in the window

    @property
    def length(self) -> int:
        return len(self.audit_ids)


def repeat_streaks(audit_ids: list[str], failed_items: Mapping[str, set[str]], minimum: int = 2) -> list[Streak]:
    """Runs of consecutive audits (oldest first, one branch and checklist) failing the same item."""
    streaks: list[Streak] = []
    running: dict[str, list[str]] = {}
    for audit_id in audit_ids:
        failed = failed_items.get(audit_id, set())
        for item_id in list(running):
            if item_id not in failed:
                run = running.pop(item_id)
                if len(run) >= minimum:
                    streaks.append(Streak(item_id, tuple(run), current=False))
        for item_id in failed:
            running.setdefault(item_id, []).append(audit_id)
    for item_id, run in running.items():
        if len(run) >= minimum:
            streaks.append(Streak(item_id, tuple(run), current=True))
    return sorted(streaks, key=lambda s: (-s.length, s.item_id, s.audit_ids[0]))


# --- rectification performance ---------------------------------------------------------------------

OPEN_STATES = ACTIVE  # a rejected fix goes back to open; "rejected" is never a stored state


def percentile(values: list[float], fraction: float) -> float | None:
    """Linear-interpolated percentile (as numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * fraction
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class RectificationStats:
    """On-time closure, time to verify, overdue and escalations for one group of rectifications."""

    total: int = 0
    verified: int = 0
    verified_on_time: int = 0
    open: int = 0
    overdue_now: int = 0
    escalated: int = 0
    max_escalation_level: int = 0
    cancelled: int = 0
    hours_to_verify: list[float] = field(default_factory=list)

    def add(self, rect: Mapping[str, Any], now: datetime) -> None:
        self.total += 1
        status = rect.get("status")
        due_at: datetime | None = rect.get("due_at")
        level = int(rect.get("escalation_level") or 0)
        if level > 0:
            self.escalated += 1
            self.max_escalation_level = max(self.max_escalation_level, level)
        if status == "cancelled":
            self.cancelled += 1
        elif status == "verified":
            self.verified += 1
            closed_at: datetime | None = rect.get("closed_at")
            if closed_at is not None:
                if due_at is None or as_utc(closed_at) <= as_utc(due_at):
                    self.verified_on_time += 1
                hours = (as_utc(closed_at) - as_utc(rect["created_at"])).total_seconds() / 3600
                self.hours_to_verify.append(hours)
        elif status in OPEN_STATES:
            self.open += 1
            if due_at is not None and as_utc(due_at) < as_utc(now):
                self.overdue_now += 1

    def public(self) -> dict[str, Any]:
        hours = self.hours_to_verify
        # Due so far: closed ones plus those whose deadline already passed while still open.
        due = self.verified + self.overdue_now
        p90 = percentile(hours, 0.9)
        return {
            "total": self.total,
            "verified": self.verified,
            "open": self.open,
            "cancelled": self.cancelled,
            "on_time_closure_rate": round(self.verified_on_time / due, 4) if due else None,
            "verified_on_time": self.verified_on_time,
            "mean_hours_to_verify": round(sum(hours) / len(hours), 2) if hours else None,
            "p90_hours_to_verify": round(p90, 2) if p90 is not None else None,
            "overdue_now": self.overdue_now,
            "escalated": self.escalated,
            "max_escalation_level": self.max_escalation_level,
        }
