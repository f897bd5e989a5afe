"""The layering the tree promises (docs/ARCHITECTURE.md), checked: routes write nothing themselves, the
domain imports no I/O, and the wiring lists name every module that exists."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import server.domain
import server.handlers
import server.http.routes
import server.services
from server.handlers import HANDLER_MODULES
from server.http.routes import ROUTE_MODULES

ROOT = Path(__file__).resolve().parents[1]
WRITES = {"emit", "record", "transact"}
# Importing any of these pulls in HTTP, a database driver, tokens or password hashing.
IO_MODULES = ("aiohttp", "pymongo", "gridfs", "motor", "jwt", "argon2", "server.http", "server.storage",
              "server.db", "server.context", "server.services")


def _modules(package: object) -> list[str]:
    path = package.__path__  # type: ignore[attr-defined]
    name = package.__name__  # type: ignore[attr-defined]
    return sorted(f"{name}.{m.name}" for m in pkgutil.iter_modules(path) if not m.name.startswith("_"))


def _write_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.name}:{node.lineno} .{node.func.attr}()"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in WRITES
    ]


def test_no_route_module_writes_an_event_a_trail_entry_or_a_transaction() -> None:
    """Commands live in server/services; a route parses, calls one and serializes."""
    routes = Path(server.http.routes.__file__).parent
    offenders = [call for path in sorted(routes.glob("*.py")) for call in _write_calls(path)]
    assert offenders == [], "move these into a command in server/services"


def test_the_domain_imports_nothing_from_http_storage_or_drivers() -> None:
    """Each domain module imported alone, in a fresh interpreter, loads no I/O module."""
    script = (
        "import importlib, json, sys\n"
        f"names = {_modules(server.domain)!r}\n"
        f"io = {IO_MODULES!r}\n"
        "found = {}\n"
        "before = set(sys.modules)\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "loaded = set(sys.modules) - before\n"
        "print(json.dumps(sorted(m for m in loaded if m.split('.')[0] in io or m.startswith(io))))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_every_route_and_handler_module_is_wired() -> None:
    """The registries are explicit imports: a module that exists but is not listed is a forgotten area."""
    assert sorted(m.__name__ for m in ROUTE_MODULES) == _modules(server.http.routes)
    listed = sorted(m.__name__ for m in HANDLER_MODULES)
    assert listed == [m for m in _modules(server.handlers) if m != "server.handlers.base"]


def test_every_command_module_is_importable_alone() -> None:
    """A service module names its own dependencies (no import-time work, no cycles through routes)."""
    script = (
        "import importlib, sys\n"
        f"for name in {_modules(server.services)!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('server.http.routes')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", "a service imports a route module"


def test_every_storage_module_with_indexes_is_collected() -> None:
    import importlib

    import server.storage
    from server.storage.registry import STORAGE_MODULES

    declaring = [name for name in _modules(server.storage) if hasattr(importlib.import_module(name), "INDEXES")]
    assert sorted(m.__name__ for m in STORAGE_MODULES) == declaring
