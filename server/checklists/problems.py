"""A problem found in a checklist definition, and where it is (file, line, path in the document)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

Loc = tuple[str | int, ...]
LineMap = dict[Loc, int]

@dataclass(frozen=True)
class DefinitionProblem:
    """One thing wrong with a definition: where (file, line, path in the document) and what."""

    file: str
    loc: Loc
    message: str
    line: int | None = None

    @property
    def path(self) -> str:
        return format_path(self.loc)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path or '(document)'}: {self.message}"


def format_path(loc: Loc) -> str:
    """`("sections", 2, "items", 5, "weight")` -> `sections[2].items[5].weight`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def line_of(lines: Mapping[Loc, int], loc: Loc) -> int | None:
    """The line of `loc`, or of its nearest ancestor present in the file (a missing key has no line)."""
    for end in range(len(loc), -1, -1):
        found = lines.get(loc[:end])
        if found is not None:
            return found
    return None
