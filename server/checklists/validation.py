"""Every problem in a checklist definition at once: the format's own rules (pydantic) reworded for
authors, plus the checks that need the whole document (ids, show_if references, options)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from schemas.checklist import LANGUAGES, Checklist
from server.checklists.problems import DefinitionProblem, Loc, format_path, line_of

# Fields of the format that hold a LocalizedText: an unknown key inside them is an unknown language.
TEXT_FIELDS = frozenset({"title", "text", "guidance", "description"})
ID_FIELDS = frozenset({"id", "item", "key"})
CHOICE_TYPES = frozenset({"single_choice", "multi_choice"})
MEASURED_TYPES = frozenset({"number", "timer"})
UNSCORED_TYPES = frozenset({"text", "photo"})
_LANGS = ", ".join(LANGUAGES)


def validate_document(document: Any, file: str, lines: Mapping[Loc, int] | None = None,
                      ) -> tuple[Checklist | None, list[DefinitionProblem]]:
    """The checklist when the document has no problem; otherwise None and every problem found."""
    found = _Problems(file, lines or {})
    if not isinstance(document, dict):
        found.add((), "a checklist definition must be a mapping with key, title, sections, ...")
        return None, found.sorted()
    checklist: Checklist | None = None
    try:
        checklist = Checklist.model_validate(document)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            found.add(tuple(error["loc"]), _reword(error))
    _DocumentChecks(document, found).run()
    problems = found.sorted()
    return (checklist if not problems else None), problems


class _Problems:
    def __init__(self, file: str, lines: Mapping[Loc, int]) -> None:
        self.file = file
        self.lines = lines
        self.found: dict[tuple[Loc, str], DefinitionProblem] = {}

    def add(self, loc: Loc, message: str) -> None:
        problem = DefinitionProblem(self.file, loc, message, line_of(self.lines, loc))
        self.found.setdefault((loc, message), problem)

    def where(self, loc: Loc) -> str:
        line = line_of(self.lines, loc)
        return format_path(loc) + (f" (line {line})" if line is not None else "")

    def sorted(self) -> list[DefinitionProblem]:
        return sorted(self.found.values(), key=lambda p: (p.line or 0, p.path, p.message))


def _reword(error: ErrorDetails) -> str:
    """Pydantic's message in an author's words, for the cases authors actually meet."""
    loc = tuple(error["loc"])
    last = loc[-1] if loc else ""
    parent = loc[-2] if len(loc) > 1 else ""
    kind = error["type"]
    value = error.get("input")
    if kind == "missing":
        return f"missing {last} translation" if last in LANGUAGES else f"{last!r} is required"
    if kind == "extra_forbidden":
        if parent in TEXT_FIELDS:
            return f"unknown language {last!r}; texts are given in exactly {_LANGS}"
        return f"unknown field {last!r}"
    if kind == "literal_error":
        expected = (error.get("ctx") or {}).get("expected", "")
        if last == "type":
            return f"unknown item type {value!r}; expected one of {expected}"
        if last == "default_language":
            return f"unknown language {value!r}; supported languages are {_LANGS}"
        return f"{value!r} is not allowed here; expected one of {expected}"
    if kind in ("value_error", "assertion_error"):
        return str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "string_too_short" and last in LANGUAGES:
        return f"the {last} translation is empty"
    if kind == "string_pattern_mismatch" and last in ID_FIELDS:
        return f"{value!r} is not a valid id: use lowercase letters, digits and '_', starting with a letter"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        if last in TEXT_FIELDS:
            return f"{last!r} needs one text per language: a mapping with {_LANGS}"
        return f"expected a mapping here, got {type(value).__name__}"
    if kind == "list_type":
        return f"expected a list here, got {type(value).__name__}"
    if kind == "too_short" and last in ("sections", "items"):
        return f"at least one entry is needed in {last!r}"
    return str(error["msg"])


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


class _DocumentChecks:
    """Checks across items, written to survive a document that is malformed elsewhere."""

    def __init__(self, document: dict[str, Any], found: _Problems) -> None:
        self.document = document
        self.found = found
        # item id -> (its loc, its position in document order, the raw item)
        self.items: dict[str, tuple[Loc, int, dict[str, Any]]] = {}

    def run(self) -> None:
        self.collect_ids()
        cycles = self.show_if_cycles()
        for item_id, (loc, _position, item) in self.items.items():
            self.check_item(item_id, loc, item)
            self.check_show_if(item_id, loc, item, cycles)
        self.check_grade_bands()
        kinds = [item.get("type") for _, _, item in self.items.values()]
        if kinds and all(kind in UNSCORED_TYPES for kind in kinds):
            self.found.add(("sections",),
                           "no item carries a score: add at least one item that is not text or photo")

    def collect_ids(self) -> None:
        sections_seen: dict[str, Loc] = {}
        position = 0
        for s_index, section in enumerate(_list(self.document.get("sections"))):
            section = _mapping(section)
            s_loc: Loc = ("sections", s_index)
            section_id = section.get("id")
            if isinstance(section_id, str):
                if section_id in sections_seen:
                    self.found.add((*s_loc, "id"), f"duplicate section id {section_id!r}; first used at "
                                   f"{self.found.where(sections_seen[section_id])}")
                else:
                    sections_seen[section_id] = s_loc
            for i_index, item in enumerate(_list(section.get("items"))):
                item = _mapping(item)
                i_loc: Loc = (*s_loc, "items", i_index)
                item_id = item.get("id")
                if not isinstance(item_id, str):
                    continue
                if item_id in self.items:
                    self.found.add((*i_loc, "id"), f"duplicate item id {item_id!r}; first used at "
                                   f"{self.found.where(self.items[item_id][0])}")
                    continue
                self.items[item_id] = (i_loc, position, item)
                position += 1

    def check_item(self, item_id: str, loc: Loc, item: dict[str, Any]) -> None:
        kind = item.get("type")
        options = item.get("options")
        if isinstance(options, list) and options:
            if kind not in CHOICE_TYPES:
                self.found.add((*loc, "options"),
                               "options are only used by single_choice and multi_choice items")
            seen: set[Any] = set()
            for index, option in enumerate(options):
                option_id = _mapping(option).get("id")
                if option_id in seen:
                    self.found.add((*loc, "options", index, "id"), f"duplicate option id {option_id!r}")
                seen.add(option_id)
            if kind in CHOICE_TYPES and not any(_mapping(o).get("passing", True) is True for o in options):
                self.found.add((*loc, "options"), "a choice item needs at least one passing option, "
                               "otherwise it can never meet the standard")
        if item.get("scale") is not None and kind != "rating":
            self.found.add((*loc, "scale"), "scale is only used by rating items")
        if item.get("pass_rule") is not None and kind not in MEASURED_TYPES:
            self.found.add((*loc, "pass_rule"), "pass_rule is only used by number and timer items")
        photo = item.get("photo")
        policy = photo if isinstance(photo, str) else _mapping(photo).get("policy", "none")
        if kind == "photo" and policy not in ("required", "optional"):
            self.found.add((*loc, "photo"), "a photo item is answered by photos: its photo policy must be "
                           "required or optional")
        if kind in UNSCORED_TYPES and item.get("critical") is True:
            self.found.add((*loc, "critical"), f"a {kind} item carries no score, so it cannot be a red line")
        channels = _mapping(item.get("applies_to")).get("channels")
        channel = self.document.get("channel", "in_branch")
        if isinstance(channels, list) and channels and channel not in channels:
            self.found.add((*loc, "applies_to", "channels"),
                           f"the checklist's channel is {channel}, so an item limited to {channels} "
                           "is never shown")

    def show_if_cycles(self) -> dict[str, list[str]]:
        """Each item on a show_if cycle -> the cycle, starting at the earliest item (reported once, there)."""
        targets = {i: _mapping(raw.get("show_if")).get("item") for i, (_, _, raw) in self.items.items()}
        on_cycle: dict[str, list[str]] = {}
        for start in self.items:
            chain: list[str] = []
            current: Any = start
            while isinstance(current, str) and current in self.items and current not in chain:
                chain.append(current)
                current = targets.get(current)
            if isinstance(current, str) and current in chain and current not in on_cycle:
                cycle = chain[chain.index(current):]
                first = min(cycle, key=lambda i: self.items[i][1])
                turn = cycle.index(first)
                ordered = cycle[turn:] + cycle[:turn]
                for member in ordered:
                    on_cycle[member] = ordered
        return on_cycle

    def check_show_if(self, item_id: str, loc: Loc, item: dict[str, Any],
                      cycles: dict[str, list[str]]) -> None:
        condition = item.get("show_if")
        if not isinstance(condition, dict) or not isinstance(condition.get("item"), str):
            return
        c_loc: Loc = (*loc, "show_if")
        target_id = condition["item"]
        if target_id == item_id:
            self.found.add((*c_loc, "item"), "show_if refers to the item itself")
            return
        if target_id not in self.items:
            self.found.add((*c_loc, "item"), f"show_if refers to unknown item {target_id!r}")
            return
        if item_id in cycles:
            cycle = cycles[item_id]
            if cycle[0] == item_id:
                self.found.add((*c_loc, "item"), "show_if cycle: " + " -> ".join([*cycle, cycle[0]]))
            return
        target_loc, target_position, target = self.items[target_id]
        if target_position > self.items[item_id][1]:
            self.found.add((*c_loc, "item"), f"show_if refers to {target_id!r}, which comes later "
                           f"({self.found.where(target_loc)}); conditions may only refer to earlier items")
        self.check_condition(c_loc, condition, target_id, target)

    def check_condition(self, c_loc: Loc, condition: dict[str, Any], target_id: str,
                        target: dict[str, Any]) -> None:
        given = [name for name in ("equals", "in", "failed") if condition.get(name) is not None]
        if len(given) != 1:
            self.found.add(c_loc, "show_if needs exactly one of equals, in or failed")
            return
        kind = target.get("type")
        if given == ["failed"]:
            if kind in UNSCORED_TYPES:
                self.found.add((*c_loc, "failed"), f"{target_id!r} is a {kind} item: it cannot fail")
            return
        values = [condition["equals"]] if given == ["equals"] else _list(condition.get("in"))
        if kind in CHOICE_TYPES:
            option_ids = {_mapping(o).get("id") for o in _list(target.get("options"))}
            for value in values:
                if value not in option_ids:
                    self.found.add((*c_loc, given[0]), f"show_if refers to unknown option {value!r} of "
                                   f"{target_id!r}; its options are {sorted(map(str, option_ids))}")
        elif kind == "yes_no" and any(not isinstance(v, bool) for v in values):
            self.found.add((*c_loc, given[0]), f"{target_id!r} is a yes_no item: compare with true or false")

    def check_grade_bands(self) -> None:
        bands = self.document.get("grade_bands")
        if not isinstance(bands, list) or not bands:
            return
        grades: set[Any] = set()
        for index, band in enumerate(bands):
            grade = _mapping(band).get("grade")
            if grade in grades:
                self.found.add(("grade_bands", index, "grade"), f"duplicate grade {grade!r}")
            grades.add(grade)
        if not any(_mapping(b).get("min_score") == 0 for b in bands):
            self.found.add(("grade_bands",),
                           "grade_bands need a band with min_score 0, so every score gets a grade")
