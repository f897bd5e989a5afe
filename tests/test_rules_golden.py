"""The server's audit rules give the golden vectors' visible items, outcomes and progress (the phone's
rules are held to the same files by `node --test` in web/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schemas.checklist import Checklist
from server.domain.audit_rules import Answer, outcome, progress, visible_items

GOLDEN = Path(__file__).resolve().parent.parent / "rules" / "golden"
CASES = [
    pytest.param(vector["checklist"], case, id=f"{path.stem}: {case['name']}")
    for path in sorted(GOLDEN.glob("*.json"))
    for vector in [json.loads(path.read_text(encoding="utf-8"))]
    for case in vector["cases"]
]


def test_the_golden_folder_has_vectors() -> None:
    assert len(CASES) >= 15


@pytest.mark.parametrize(("definition", "case"), CASES)
def test_server_rules_match_the_golden_vector(definition: dict[str, Any], case: dict[str, Any]) -> None:
    checklist = Checklist.model_validate(definition)
    answers = {k: Answer(value=v.get("value"), na=bool(v.get("na", False))) for k, v in case["answers"].items()}
    context = case.get("context") or {}
    branch_type, channel = context.get("branch_type"), context.get("channel")
    visible = visible_items(checklist, answers, branch_type=branch_type, channel=channel)
    assert sorted(visible) == case["expect"]["visible"]
    outcomes = {i.id: outcome(i, answers.get(i.id)) if i.id in visible else "hidden" for i in checklist.items()}
    assert outcomes == case["expect"]["outcomes"]
    got = progress(checklist, answers, case["photo_counts"], branch_type=branch_type, channel=channel)
    assert got.as_dict() == case["expect"]["progress"]
