"""Scoring an audit: pure, deterministic, versioned, with a breakdown that explains every point."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, Literal

from pydantic import BaseModel

from schemas.checklist import Checklist, Item
from server.domain.audit_rules import Answer, outcome, visible_items

RULES_VERSION = 1
FAIL_GRADE = "F"

ItemOutcome = Literal["pass", "fail", "na", "hidden", "unscored", "unanswered"]


class ItemScore(BaseModel):
    item_id: str
    section_id: str
    weight: float
    earned: float
    max: float
    outcome: ItemOutcome
    reason: str
    critical: bool = False
    severity: str = "minor"


class SectionScore(BaseModel):
    id: str
    weight: float
    points: float
    max: float
    score: float | None


class ScoreResult(BaseModel):
    score: float | None
    grade: str | None
    critical_failed: bool
    sections: list[SectionScore]
    breakdown: list[ItemScore]
    rules_version: int

    def failed_items(self) -> list[ItemScore]:
        return [entry for entry in self.breakdown if entry.outcome == "fail"]


def _round(value: float) -> float:
    return round(value + 0.0, 2)


def _rating_points(item: Item, value: int) -> float:
    assert item.scale is not None
    return item.weight * (value - item.scale.min) / (item.scale.max - item.scale.min)


def _score_item_v1(item: Item, section_id: str, answer: Answer | None, *, visible: bool, overturned: bool) -> ItemScore:
    base: dict[str, Any] = {
        "item_id": item.id,
        "section_id": section_id,
        "weight": item.weight,
        "critical": item.critical,
        "severity": item.severity,
    }
    if not visible:
        return ItemScore(**base, earned=0, max=0, outcome="hidden", reason="hidden by show_if or not applicable")
    result = outcome(item, answer)
    if result == "unscored":
        return ItemScore(**base, earned=0, max=0, outcome="unscored", reason=f"{item.type} items carry no points")
    if result == "na":
        return ItemScore(**base, earned=0, max=0, outcome="na", reason="N/A: left out of the denominator")
    if result == "unanswered":
        return ItemScore(**base, earned=0, max=0, outcome="unanswered", reason="not answered (optional item)")
    if overturned:
        return ItemScore(
            **base,
            earned=item.weight,
            max=item.weight,
            outcome="pass",
            reason="finding overturned on appeal: counted as passed",
        )
    assert answer is not None
    if item.type == "rating":
        assert item.scale is not None
        earned = _rating_points(item, int(answer.value))
        verdict = "meets" if result == "pass" else "below"
        reason = (
            f"rating {answer.value} on {item.scale.min}..{item.scale.max} ({verdict} pass mark "
            f"{item.scale.pass_at}): {earned:.4g} of {item.weight:g}"
        )
        return ItemScore(**base, earned=earned, max=item.weight, outcome=result, reason=reason)
    earned = item.weight if result == "pass" else 0.0
    if item.type in ("number", "timer"):
        reason = f"measured {answer.value} {item.unit or ''} against rule {item.rule()}".replace("  ", " ")
    elif item.type == "yes_no":
        reason = "standard met" if result == "pass" else "standard not met"
    else:
        reason = f"chosen {answer.value!r}: " + ("all options passing" if result == "pass" else "a failing option")
    return ItemScore(**base, earned=earned, max=item.weight, outcome=result, reason=reason)


def grade_for(checklist: Checklist, score: float | None, critical_failed: bool) -> str | None:
    """The checklist's grade band for a score; F whenever a critical item failed."""
    if critical_failed:
        return FAIL_GRADE
    if score is None:
        return None
    for band in sorted(checklist.grade_bands, key=lambda b: b.min_score, reverse=True):
        if score >= band.min_score:
            return band.grade
    return FAIL_GRADE


def _score_v1(
    checklist: Checklist,
    answers: Mapping[str, Answer],
    *,
    branch_type: str | None,
    channel: str | None,
    overturned: Collection[str],
) -> ScoreResult:
    visible = visible_items(checklist, answers, branch_type=branch_type, channel=channel)
    breakdown: list[ItemScore] = []
    sections: list[SectionScore] = []
    weighted_points = weighted_max = 0.0
    for section in checklist.sections:
        points = maximum = 0.0
        for item in section.items:
            entry = _score_item_v1(
                item,
                section.id,
                answers.get(item.id),
                visible=item.id in visible,
                overturned=item.id in overturned,
            )
            breakdown.append(entry)
            points += entry.earned
            maximum += entry.max
        sections.append(
            SectionScore(
                id=section.id,
                weight=section.weight,
                points=_round(points),
                max=_round(maximum),
                score=_round(points / maximum * 100) if maximum else None,
            )
        )
        weighted_points += section.weight * points
        weighted_max += section.weight * maximum
    score = _round(weighted_points / weighted_max * 100) if weighted_max else None
    critical_failed = any(e.critical and e.outcome == "fail" for e in breakdown)
    return ScoreResult(
        score=score,
        grade=grade_for(checklist, score, critical_failed),
        critical_failed=critical_failed,
        sections=sections,
        breakdown=breakdown,
        rules_version=1,
    )


Scorer = Callable[..., ScoreResult]
# Old versions stay here unchanged so that re-scoring an old audit gives the numbers it had.
SCORERS: dict[int, Scorer] = {1: _score_v1}


def score_audit(
    checklist: Checklist,
    answers: Mapping[str, Answer],
    *,
    branch_type: str | None = None,
    channel: str | None = None,
    overturned: Collection[str] = (),
    rules_version: int = RULES_VERSION,
) -> ScoreResult:
    """Score answers against a checklist version with the given rules version."""
    scorer = SCORERS.get(rules_version)
    if scorer is None:
        raise ValueError(f"unknown scoring rules version {rules_version}")
    return scorer(checklist, answers, branch_type=branch_type, channel=channel, overturned=frozenset(overturned))
