"""The web app's own checks in the pytest loop: vue-tsc types, and `node --test` for the pure TypeScript
modules (rules against the golden vectors, outbox, tus client, token refresh, locale completeness)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"
VENV_BIN = Path(sys.executable).parent

pytestmark = pytest.mark.skipif(not (WEB / "node_modules").is_dir(), reason="web/node_modules missing (make web)")


def run_npm(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}
    return subprocess.run(["npm", "run", "--silent", *args], cwd=WEB, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_node_tests_of_the_pure_modules_pass() -> None:
    result = run_npm("test")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout


def test_vue_tsc_finds_no_type_errors() -> None:
    result = run_npm("typecheck")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
