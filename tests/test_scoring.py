"""Scoring: weights, N/A, thresholds, critical failure, grade bands, partial rating points, appeals,
rules version stability. Pure unit tests, no database."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.checklist import Checklist
from server.domain.audit_rules import Answer
from server.domain.scoring import RULES_VERSION, score_audit
from tests.audit_factories import PASSING_VALUES, checklist_definition, item, sized_definition, text

PASSING = PASSING_VALUES


def answers(**overrides: Any) -> dict[str, Answer]:
    values = {**PASSING, **overrides}
    return {k: (v if isinstance(v, Answer) else Answer(value=v)) for k, v in values.items()}


@pytest.fixture
def checklist() -> Checklist:
    return Checklist.model_validate(checklist_definition())


def entry(result: Any, item_id: str) -> Any:
    return next(e for e in result.breakdown if e.item_id == item_id)


def test_all_passing_scores_100_grade_a(checklist: Checklist) -> None:
    result = score_audit(checklist, answers())
    assert result.score == 100.0
    assert result.grade == "A"
    assert not result.critical_failed
    assert result.rules_version == RULES_VERSION
    assert [s.id for s in result.sections] == ["environment", "service"]
    # environment: hall_clean 2 + signage 1 + atm 1 = 4; service: greeted, wait, timer, choice, multi, badge = 6
    assert [(s.points, s.max) for s in result.sections] == [(4.0, 4.0), (6.0, 6.0)]


def test_item_weight_and_section_weight(checklist: Checklist) -> None:
    result = score_audit(checklist, answers(hall_clean=False))
    env = result.sections[0]
    assert (env.points, env.max, env.score) == (2.0, 4.0, 50.0)
    # overall: (1 * 2 + 2 * 6) / (1 * 4 + 2 * 6) = 14 / 16
    assert result.score == 87.5
    assert result.grade == "B"
    assert entry(result, "hall_clean").outcome == "fail"
    assert entry(result, "hall_clean").earned == 0 and entry(result, "hall_clean").max == 2


def test_na_leaves_the_denominator(checklist: Checklist) -> None:
    result = score_audit(checklist, answers(atm_working=Answer(na=True), hall_clean=False))
    env = result.sections[0]
    assert (env.points, env.max) == (1.0, 3.0)
    assert entry(result, "atm_working").outcome == "na"
    assert result.score == round((1 + 12) / (3 + 12) * 100, 2)


def test_rating_gives_proportional_points_and_fails_below_pass_mark(checklist: Checklist) -> None:
    three = score_audit(checklist, answers(signage=3))
    assert entry(three, "signage").earned == pytest.approx(0.5)
    assert entry(three, "signage").outcome == "fail"
    four = score_audit(checklist, answers(signage=4))
    assert entry(four, "signage").earned == pytest.approx(0.75)
    assert entry(four, "signage").outcome == "pass"
    assert entry(score_audit(checklist, answers(signage=1)), "signage").earned == 0


@pytest.mark.parametrize(
    ("item_id", "value", "expected"),
    [
        ("wait_minutes", 10, "pass"),
        ("wait_minutes", 10.5, "fail"),
        ("time_to_greet", 30, "pass"),
        ("time_to_greet", 31, "fail"),
        ("greeting_words", "none", "fail"),
        ("farewell", ["smile", "ignored"], "fail"),
        ("farewell", ["words"], "pass"),
    ],
)
def test_thresholds_and_choices(checklist: Checklist, item_id: str, value: Any, expected: str) -> None:
    result = score_audit(checklist, answers(**{item_id: value}))
    assert entry(result, item_id).outcome == expected
    assert entry(result, item_id).earned == (1.0 if expected == "pass" else 0.0)


def test_critical_failure_gives_f_whatever_the_points(checklist: Checklist) -> None:
    result = score_audit(checklist, answers(atm_working=False))
    assert result.score == round(15 / 16 * 100, 2)
    assert result.critical_failed
    assert result.grade == "F"


def test_hidden_items_are_excluded_and_shown_ones_count(checklist: Checklist) -> None:
    hidden = score_audit(checklist, answers(complaint_followup=False))
    assert entry(hidden, "complaint_followup").outcome == "hidden"
    assert hidden.score == 100.0
    shown = score_audit(checklist, answers(greeted=False, complaint_followup=False))
    assert entry(shown, "complaint_followup").outcome == "fail"
    assert shown.sections[1].max == 7.0


def test_text_and_photo_items_are_unscored(checklist: Checklist) -> None:
    result = score_audit(checklist, answers())
    assert entry(result, "comments").outcome == "unscored"
    assert entry(result, "lobby_photo").outcome == "unscored"


def test_grade_bands_come_from_the_checklist() -> None:
    definition = checklist_definition()
    definition["grade_bands"] = [{"grade": "AAA", "min_score": 95}, {"grade": "OK", "min_score": 0}]
    checklist = Checklist.model_validate(definition)
    assert score_audit(checklist, answers()).grade == "AAA"
    assert score_audit(checklist, answers(hall_clean=False)).grade == "OK"


def test_overturned_finding_counts_as_passed(checklist: Checklist) -> None:
    failed = answers(hall_clean=False, atm_working=False)
    before = score_audit(checklist, failed)
    after = score_audit(checklist, failed, overturned={"hall_clean", "atm_working"})
    assert before.grade == "F" and before.score == 81.25
    assert after.score == 100.0 and not after.critical_failed and after.grade == "A"
    assert "overturned" in entry(after, "hall_clean").reason


def test_breakdown_explains_every_point(checklist: Checklist) -> None:
    result = score_audit(checklist, answers(signage=3, wait_minutes=20))
    assert {e.item_id for e in result.breakdown} == {i.id for i in checklist.items()}
    for section in result.sections:
        rows = [e for e in result.breakdown if e.section_id == section.id]
        assert round(sum(e.earned for e in rows), 2) == section.points
        assert round(sum(e.max for e in rows), 2) == section.max
    assert all(e.reason for e in result.breakdown)
    assert "20" in entry(result, "wait_minutes").reason


def test_rescoring_with_the_stored_rules_version_is_identical(checklist: Checklist) -> None:
    given = answers(signage=2, farewell=["ignored"], atm_working=Answer(na=True))
    first = score_audit(checklist, given)
    stored = first.model_dump(mode="json")
    again = score_audit(checklist, given, rules_version=stored["rules_version"])
    assert again.model_dump(mode="json") == stored
    with pytest.raises(ValueError, match="rules version"):
        score_audit(checklist, given, rules_version=999)


def test_nothing_scorable_has_no_score() -> None:
    checklist = Checklist.model_validate(
        {
            "key": "only-text",
            "title": text("t"),
            "sections": [{"id": "notes", "title": text("s"), "items": [item("note_only", "text")]}],
        }
    )
    result = score_audit(checklist, {"note_only": Answer(value="x")})
    assert result.score is None and result.grade is None and not result.critical_failed


def test_sized_checklists_score_fully_when_passing() -> None:
    checklist = Checklist.model_validate(sized_definition(40, "sized"))
    values = {"yes_no": True, "rating": 5, "number": 3, "single_choice": "ok"}
    result = score_audit(checklist, {i.id: Answer(value=values[i.type]) for i in checklist.items()})
    assert result.score == 100.0 and len(result.breakdown) == 40
