"""Loading and validating checklist definitions: one test per kind of bad definition, each checking the
file, line and path reported, plus the shipped checklists."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from server.checklists.loading import load_dir, load_file, load_text
from server.checklists.problems import DefinitionProblem
from server.commands.checklists import cmd_validate
from server.settings import Settings

SHIPPED = Path(__file__).resolve().parents[1] / "checklists"

# Line numbers below refer to this layout; each test edits one line or appends lines.
VALID = """\
key: demo
title: {zh-CN: 演示, en: Demo, es: Demostración}
default_language: en
sections:
  - id: hall
    title: {zh-CN: 大厅, en: Hall, es: Vestíbulo}
    items:
      - id: clean
        type: yes_no
        text: {zh-CN: 干净, en: Clean, es: Limpio}
      - id: wait
        type: number
        unit: minutes
        pass_rule: "<= 10"
        text: {zh-CN: 等候, en: Wait, es: Espera}
"""


def only(problems: list[DefinitionProblem]) -> DefinitionProblem:
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def test_the_valid_definition_loads() -> None:
    result = load_text(VALID, "demo.yaml")
    assert result.ok, [str(p) for p in result.problems]
    assert result.checklist is not None
    assert [i.id for i in result.checklist.items()] == ["clean", "wait"]


def test_duplicate_item_id_across_sections_is_reported_at_the_second_use() -> None:
    text = VALID + """\
  - id: counter
    title: {zh-CN: 柜台, en: Counter, es: Ventanilla}
    items:
      - id: clean
        type: yes_no
        text: {zh-CN: 干净, en: Clean, es: Limpio}
"""
    problem = only(load_text(text, "dup.yaml").problems)
    assert (problem.file, problem.line, problem.path) == ("dup.yaml", 19, "sections[1].items[0].id")
    assert "duplicate item id 'clean'" in problem.message and "sections[0].items[0] (line 8)" in problem.message


def test_duplicate_item_id_within_a_section() -> None:
    text = VALID + """\
      - id: wait
        type: yes_no
        text: {zh-CN: 等候, en: Wait, es: Espera}
"""
    problem = only(load_text(text, "dup.yaml").problems)
    assert (problem.line, problem.path) == (16, "sections[0].items[2].id")


def test_duplicate_section_id() -> None:
    text = VALID + """\
  - id: hall
    title: {zh-CN: 大厅, en: Hall, es: Vestíbulo}
    items:
      - id: lights
        type: yes_no
        text: {zh-CN: 灯, en: Lights, es: Luces}
"""
    problem = only(load_text(text, "dup.yaml").problems)
    assert (problem.line, problem.path) == (16, "sections[1].id")
    assert "duplicate section id 'hall'" in problem.message


def test_unknown_item_type() -> None:
    text = VALID.replace("type: yes_no", "type: checkbox")
    problem = only(load_text(text, "type.yaml").problems)
    assert (problem.file, problem.line, problem.path) == ("type.yaml", 9, "sections[0].items[0].type")
    assert problem.message.startswith("unknown item type 'checkbox'")


def test_show_if_on_a_missing_item() -> None:
    text = VALID + "        show_if: {item: ghost, equals: true}\n"
    problem = only(load_text(text, "show.yaml").problems)
    assert (problem.line, problem.path) == (16, "sections[0].items[1].show_if.item")
    assert problem.message == "show_if refers to unknown item 'ghost'"


def test_show_if_cycle_is_reported_once_at_its_earliest_item() -> None:
    text = VALID.replace("        text: {zh-CN: 干净, en: Clean, es: Limpio}\n",
                         "        text: {zh-CN: 干净, en: Clean, es: Limpio}\n"
                         "        show_if: {item: wait, failed: true}\n")
    text += "        show_if: {item: clean, equals: false}\n"
    problem = only(load_text(text, "cycle.yaml").problems)
    assert (problem.line, problem.path) == (11, "sections[0].items[0].show_if.item")
    assert problem.message == "show_if cycle: clean -> wait -> clean"


def test_show_if_on_a_later_item() -> None:
    text = VALID.replace("        text: {zh-CN: 干净, en: Clean, es: Limpio}\n",
                         "        text: {zh-CN: 干净, en: Clean, es: Limpio}\n"
                         "        show_if: {item: wait, failed: true}\n")
    problem = only(load_text(text, "later.yaml").problems)
    assert (problem.line, problem.path) == (11, "sections[0].items[0].show_if.item")
    assert "which comes later" in problem.message


def test_show_if_on_an_unknown_option() -> None:
    text = VALID + """\
      - id: outcome
        type: single_choice
        text: {zh-CN: 结果, en: Outcome, es: Resultado}
        options:
          - {id: solved, text: {zh-CN: 解决, en: Solved, es: Resuelto}}
          - {id: open, passing: false, text: {zh-CN: 未决, en: Open, es: Abierto}}
      - id: follow_up
        type: yes_no
        text: {zh-CN: 跟进, en: Follow-up, es: Seguimiento}
        show_if: {item: outcome, in: [open, escalated]}
"""
    problem = only(load_text(text, "option.yaml").problems)
    assert (problem.line, problem.path) == (25, "sections[0].items[3].show_if.in")
    assert "unknown option 'escalated' of 'outcome'" in problem.message


def test_non_positive_weight() -> None:
    text = VALID.replace("        type: yes_no\n", "        type: yes_no\n        weight: 0\n")
    problem = only(load_text(text, "weight.yaml").problems)
    assert (problem.line, problem.path) == (10, "sections[0].items[0].weight")
    assert problem.message == "weight must be positive"


def test_missing_translation_points_at_the_text() -> None:
    text = VALID.replace("{zh-CN: 干净, en: Clean, es: Limpio}", "{zh-CN: 干净, en: Clean}")
    problem = only(load_text(text, "lang.yaml").problems)
    assert (problem.line, problem.path) == (10, "sections[0].items[0].text.es")
    assert problem.message == "missing es translation"


def test_unknown_language_in_a_text() -> None:
    text = VALID.replace("{zh-CN: 等候, en: Wait, es: Espera}", "{zh-CN: 等候, en: Wait, es: Espera, fr: Attente}")
    problem = only(load_text(text, "lang.yaml").problems)
    assert (problem.line, problem.path) == (15, "sections[0].items[1].text.fr")
    assert problem.message.startswith("unknown language 'fr'")


def test_unknown_default_language() -> None:
    problem = only(load_text(VALID.replace("default_language: en", "default_language: fr"), "l.yaml").problems)
    assert (problem.line, problem.path) == (3, "default_language")
    assert problem.message.startswith("unknown language 'fr'")


def test_choice_item_without_a_passing_option() -> None:
    text = VALID + """\
      - id: outcome
        type: single_choice
        text: {zh-CN: 结果, en: Outcome, es: Resultado}
        options:
          - {id: open, passing: false, text: {zh-CN: 未决, en: Open, es: Abierto}}
"""
    problem = only(load_text(text, "choice.yaml").problems)
    assert (problem.line, problem.path) == (19, "sections[0].items[2].options")
    assert "at least one passing option" in problem.message


def test_duplicate_yaml_key_is_not_silently_dropped() -> None:
    text = VALID.replace("        unit: minutes\n", "        unit: minutes\n        unit: seconds\n")
    problem = only(load_text(text, "key.yaml").problems)
    assert (problem.line, problem.path) == (14, "sections[0].items[1].unit")
    assert "duplicate key 'unit' (first on line 13)" in problem.message


def test_every_problem_is_listed_not_just_the_first() -> None:
    text = (VALID.replace("type: yes_no", "type: checkbox")
            .replace("{zh-CN: 等候, en: Wait, es: Espera}", "{zh-CN: 等候, en: Wait}")
            .replace("pass_rule: \"<= 10\"", "pass_rule: \"<= 10\"\n        weight: -2"))
    text += "        show_if: {item: ghost, equals: true}\n"
    problems = load_text(text, "many.yaml").problems
    assert [(p.line, p.path) for p in problems] == [
        (9, "sections[0].items[0].type"),
        (15, "sections[0].items[1].weight"),
        (16, "sections[0].items[1].text.es"),
        (17, "sections[0].items[1].show_if.item"),
    ]


def test_malformed_yaml_reports_the_line() -> None:
    text = VALID.replace("        type: yes_no\n", "        type: [yes_no\n")
    problem = only(load_text(text, "broken.yaml").problems)
    assert problem.file == "broken.yaml" and problem.path == ""
    assert problem.line is not None and 9 <= problem.line <= 11
    assert problem.message.startswith("YAML syntax error")


def test_alias_bombs_are_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    problem = only(load_text("\n".join(lines) + "\n", "bomb.yaml").problems)
    assert "expands to more than" in problem.message


def test_two_files_with_the_same_key(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VALID, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(VALID, encoding="utf-8")
    first, second = load_dir(tmp_path)
    assert first.ok and not second.ok
    problem = only(second.problems)
    assert (problem.file, problem.line, problem.path) == (str(tmp_path / "b.yaml"), 1, "key")


@pytest.mark.parametrize("name", ["branch-service", "mystery-visit", "mystery-call"])
def test_shipped_checklists_validate(name: str) -> None:
    result = load_file(SHIPPED / f"{name}.yaml")
    assert result.ok, "\n".join(str(p) for p in result.problems)
    assert result.checklist is not None and result.checklist.key == name


def test_branch_service_covers_the_standard() -> None:
    checklist = load_file(SHIPPED / "branch-service.yaml").checklist
    assert checklist is not None
    items = checklist.items()
    assert len(items) >= 40
    assert [s.id for s in checklist.sections] == [
        "environment", "facilities", "appearance", "etiquette", "counter", "queue", "complaints"]
    types = {i.type for i in items}
    assert {"yes_no", "rating", "number", "timer", "single_choice", "multi_choice", "text", "photo"} <= types
    assert {i.id for i in items if i.critical} >= {"counter_cash_secured", "counter_customer_data"}
    rules = {i.id: str(i.rule()) for i in items if i.rule()}
    assert rules["queue_wait_minutes"] == "<= 10" and rules["greet_time_to_greet"] == "<= 30"
    assert checklist.item("fac_queue_manual_triage").show_if.item == "fac_queue_machine"  # type: ignore[union-attr]
    assert any(i.applies_to and i.applies_to.branch_types and "self_service" not in i.applies_to.branch_types
               for i in items)
    assert all(i.photo.policy == "required_on_fail" for i in checklist.sections[0].items if i.type == "yes_no"
               and i.severity == "major")


def test_mystery_call_is_a_phone_checklist_with_the_hotline_targets() -> None:
    checklist = load_file(SHIPPED / "mystery-call.yaml").checklist
    assert checklist is not None and checklist.channel == "phone"
    answer = checklist.item("mc_answer_seconds")
    assert answer is not None and answer.type == "timer" and str(answer.rule()) == "<= 15"


def test_cli_validate_prints_file_line_path_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.yaml").write_text(VALID.replace("type: yes_no", "type: checkbox"), encoding="utf-8")
    (tmp_path / "good.yaml").write_text(VALID.replace("key: demo", "key: demo-two"), encoding="utf-8")
    code = cmd_validate(argparse.Namespace(path=tmp_path), Settings())
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 1
    assert out == [f"{tmp_path / 'bad.yaml'}:9: sections[0].items[0].type: unknown item type 'checkbox'; "
                   "expected one of 'yes_no', 'rating', 'number', 'single_choice', 'multi_choice', 'text', "
                   "'photo' or 'timer'"]


def test_cli_validate_passes_the_shipped_directory(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_validate(argparse.Namespace(path=SHIPPED), Settings()) == 0
    assert capsys.readouterr().out == ""
