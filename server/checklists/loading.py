"""Reading a checklist definition (YAML or JSON) into a document plus the line of every path in it,
so each problem can point at the line an author has to fix."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from schemas.checklist import Checklist
from server.checklists.problems import DefinitionProblem, LineMap, Loc
from server.checklists.validation import validate_document

# Aliases can make a tiny file expand into a huge tree ("billion laughs"); no real checklist comes close.
MAX_NODES = 100_000
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class ParsedDocument:
    """The plain document (dicts and lists), where each path starts, and problems found while parsing."""

    file: str
    document: Any = None
    lines: LineMap = field(default_factory=dict)
    problems: list[DefinitionProblem] = field(default_factory=list)


@dataclass
class LoadResult:
    """A validated checklist, or every problem that stops it from being published."""

    file: str
    checklist: Checklist | None
    problems: list[DefinitionProblem]
    lines: LineMap = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.checklist is not None and not self.problems


class _Indexer:
    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: LineMap = {(): 1}
        self.problems: list[DefinitionProblem] = []
        self.visited = 0

    def walk(self, node: yaml.Node, loc: Loc) -> None:
        self.visited += 1
        if self.visited > MAX_NODES:
            raise _TooLarge
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
                line = key_node.start_mark.line + 1
                if key in seen:
                    self.problems.append(DefinitionProblem(
                        self.file, (*loc, key), f"duplicate key {key!r} (first on line {seen[key]}); "
                        "YAML would silently keep only the last one", line))
                else:
                    seen[key] = line
                self.lines.setdefault((*loc, key), line)
                self.walk(value_node, (*loc, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, child in enumerate(node.value):
                self.lines.setdefault((*loc, index), child.start_mark.line + 1)
                self.walk(child, (*loc, index))


class _TooLarge(Exception):
    pass


def parse_yaml(text: str, file: str) -> ParsedDocument:
    """Parse one YAML document with safe types only, keeping the line of every mapping key and list entry."""
    parsed = ParsedDocument(file)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            parsed.problems.append(DefinitionProblem(file, (), "the file is empty", 1))
            return parsed
        indexer = _Indexer(file)
        indexer.walk(node, ())
        parsed.lines = indexer.lines
        parsed.problems.extend(indexer.problems)
        parsed.document = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        parts = [p for p in (exc.context, exc.problem) if p]
        parsed.problems.append(DefinitionProblem(
            file, (), "YAML syntax error: " + ", ".join(parts or ["unreadable"]),
            mark.line + 1 if mark is not None else None))
    except yaml.YAMLError as exc:
        parsed.problems.append(DefinitionProblem(file, (), f"YAML syntax error: {exc}"))
    except _TooLarge:
        parsed.problems.append(DefinitionProblem(
            file, (), f"the document expands to more than {MAX_NODES} nodes (aliases?)", 1))
    except RecursionError:
        parsed.problems.append(DefinitionProblem(file, (), "the document is nested too deeply", 1))
    finally:
        loader.dispose()
    return parsed


def parse_json(text: str, file: str) -> ParsedDocument:
    """Parse a JSON definition (as uploaded through the API). JSON is read by the JSON parser; the line of
    each path comes from reading the same text as YAML (a superset of JSON), when that works."""
    parsed = ParsedDocument(file)
    try:
        parsed.document = json.loads(text)
    except json.JSONDecodeError as exc:
        parsed.problems.append(DefinitionProblem(file, (), f"JSON syntax error: {exc.msg}", exc.lineno))
        return parsed
    except RecursionError:
        parsed.problems.append(DefinitionProblem(file, (), "the document is nested too deeply", 1))
        return parsed
    as_yaml = parse_yaml(text, file)
    if not as_yaml.problems:
        parsed.lines = as_yaml.lines
    return parsed


def load_text(text: str, file: str, *, json_body: bool = False) -> LoadResult:
    """Parse and validate one definition; the checklist is set only when there is no problem at all."""
    parsed = parse_json(text, file) if json_body else parse_yaml(text, file)
    if parsed.problems and parsed.document is None:
        return LoadResult(file, None, parsed.problems, parsed.lines)
    checklist, problems = validate_document(parsed.document, file, parsed.lines)
    problems = sorted([*parsed.problems, *problems], key=lambda p: (p.line or 0, p.path))
    return LoadResult(file, checklist if not problems else None, problems, parsed.lines)


def load_file(path: Path) -> LoadResult:
    """Load one YAML file; unreadable or non-UTF-8 files are problems, not exceptions."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return LoadResult(str(path), None, [DefinitionProblem(str(path), (), "the file is not UTF-8")])
    except OSError as exc:
        return LoadResult(str(path), None, [DefinitionProblem(str(path), (), f"cannot read: {exc.strerror}")])
    return load_text(text, str(path), json_body=path.suffix == ".json")


def definition_files(target: Path) -> list[Path]:
    """The definition files under a directory (sorted, so output and publishing order are stable)."""
    if target.is_file():
        return [target]
    return sorted(p for p in target.iterdir() if p.is_file() and p.suffix in (*YAML_SUFFIXES, ".json"))


def load_dir(target: Path) -> list[LoadResult]:
    """Load every definition file in a directory; two files with the same key are a problem in the second."""
    results = [load_file(path) for path in definition_files(target)]
    owners: dict[str, str] = {}
    for result in results:
        if result.checklist is None:
            continue
        key = result.checklist.key
        if key in owners:
            result.problems.append(DefinitionProblem(
                result.file, ("key",), f"key {key!r} is already defined in {owners[key]}",
                result.lines.get(("key",))))
            result.checklist = None
        else:
            owners[key] = result.file
    return results
