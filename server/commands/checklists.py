"""`branch-audit checklists validate DIR` and `branch-audit checklists publish DIR`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from server.checklists.loading import LoadResult, load_dir
from server.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("checklists", help="validate and publish checklist definitions")
    commands = parser.add_subparsers(dest="checklists_command", required=True)
    validate = commands.add_parser("validate", help="report every problem in the definitions (exit 1 on any)")
    validate.add_argument("path", type=Path, help="a directory of YAML definitions, or one file")
    validate.set_defaults(func=cmd_validate)
    publish = commands.add_parser("publish", help="publish changed definitions as new versions")
    publish.add_argument("path", type=Path, help="a directory of YAML definitions, or one file")
    publish.set_defaults(func=cmd_publish)


def _load(path: Path) -> list[LoadResult] | None:
    if not path.exists():
        print(f"error: {path} does not exist", file=sys.stderr)
        return None
    results = load_dir(path)
    if not results:
        print(f"error: no .yaml, .yml or .json definitions in {path}", file=sys.stderr)
        return None
    return results


def _report(results: list[LoadResult]) -> int:
    """Print every problem as `file:line: path: message`; the number of problems found."""
    count = 0
    for result in results:
        for problem in result.problems:
            print(problem)
            count += 1
    return count


def cmd_validate(args: argparse.Namespace, settings: Settings) -> int:
    results = _load(args.path)
    if results is None:
        return 1
    problems = _report(results)
    for result in results:
        if result.checklist is not None:
            print(f"ok: {result.file}: {result.checklist.key} ({len(result.checklist.items())} items)",
                  file=sys.stderr)
    if problems:
        print(f"{problems} problem{'s' if problems != 1 else ''} found", file=sys.stderr)
        return 1
    return 0


def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    """Publishes only when every file is valid, so a directory is never half-published."""
    from server.checklists.publishing import publish
    from server.cli import with_database
    from server.context import ActorInfo

    results = _load(args.path)
    if results is None:
        return 1
    if _report(results):
        print("nothing published: fix the problems above first", file=sys.stderr)
        return 1

    valid = [(result.file, result.checklist) for result in results if result.checklist is not None]

    async def work(services: Any) -> int:
        for file, checklist in valid:
            outcome = await publish(services, checklist, ActorInfo.system("cli"))
            state = "published" if outcome.created else "unchanged"
            print(f"{state}: {outcome.key} v{outcome.version} ({file})")
        return 0

    return with_database(settings, work)
