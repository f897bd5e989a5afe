"""The README's two commands are the ones CI and the Makefile actually use."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_commands_match_ci_and_makefile() -> None:
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^make run\b", readme, re.M), "README shows `make run`"
    assert re.search(r"^make test\b", readme, re.M), "README shows `make test`"
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M), ".ci/run calls make test"
    makefile = (ROOT / "Makefile").read_text()
    targets = dict(re.findall(r"^([a-z]+):(.*)$", makefile, re.M))
    # Both commands install first, so a fresh clone needs nothing else.
    assert "install" in targets["run"] and "install" in targets["test"]
    assert "pip install" in makefile and "-e '.[dev]'" in makefile
    assert "branch-audit serve" in makefile and "pytest" in makefile


def test_every_runtime_import_is_a_declared_dependency() -> None:
    """A module imported by server/ must be installed by `pip install -e .`, not only present here."""
    pyproject = (ROOT / "pyproject.toml").read_text().lower()
    declared = {m.group(1).replace("-", "_") for m in re.finditer(r'"([a-z0-9_.-]+)==', pyproject)}
    import_names = {"pil": "pillow", "jwt": "pyjwt", "yaml": "pyyaml", "argon2": "argon2_cffi",
                    "imagehash": "imagehash", "fpdf": "fpdf2", "pillow_heif": "pillow_heif",
                    "pydantic_settings": "pydantic_settings", "swagger_ui_bundle": "swagger_ui_bundle",
                    "gridfs": "pymongo", "bson": "pymongo", "pydantic_core": "pydantic",
                    "multidict": "aiohttp", "yarl": "aiohttp"}
    stdlib_and_local = {"server", "schemas", "__future__"}
    import sys

    missing = set()
    for path in list((ROOT / "server").rglob("*.py")) + list((ROOT / "schemas").rglob("*.py")):
        # The syntax tree, not the text: a docstring line starting "from the ..." is not an import.
        tree = ast.parse(path.read_text())
        tops = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
        tops |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and not node.level}
        for top in tops:
            if top in stdlib_and_local or top in sys.stdlib_module_names:
                continue
            name = import_names.get(top.lower(), top.lower())
            if name not in declared:
                missing.add(f"{top} ({path.relative_to(ROOT)})")
    assert not missing, f"imported but not pinned in pyproject.toml: {sorted(missing)}"


def _build_script(tmp_path: Path, root: Path, path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/sh", str(ROOT / "mk" / "build-secantusd-rs.sh"), "0.0.0-test", "1.98", str(root)],
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": path, "HOME": str(tmp_path / "home")})


def test_make_embedded_builds_the_version_the_server_runs_into_the_machine_cache() -> None:
    from server.embedded import SECANTUSD_RS_VERSION, rust_server_path

    dry_run = subprocess.run(["make", "-n", "embedded"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert dry_run.returncode == 0, dry_run.stderr
    assert f'build-secantusd-rs.sh "{SECANTUSD_RS_VERSION}" "1.98" "{rust_server_path().parents[1]}"' in dry_run.stdout
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"EMBEDDED_DB=python \$\(BIN\)/pytest -q -p no:cacheprovider .*-m smoke", makefile)


def test_without_cargo_make_embedded_says_the_python_fallback_in_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty-path"
    empty.mkdir()
    result = _build_script(tmp_path, tmp_path / "cache" / "0.0.0-test", str(empty))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "embedded database: cargo not found, so secantusd-rs cannot be built; "
        "the Python fallback (secantusd-py) will be used"]


def test_a_failed_build_is_not_retried_by_every_make(tmp_path: Path) -> None:
    root = tmp_path / "cache" / "0.0.0-test"
    root.parent.mkdir(parents=True)
    Path(f"{root}.failed").touch()
    result = _build_script(tmp_path, root, "/usr/bin:/bin")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert "failed to build before" in result.stdout and "make embedded-retry" in result.stdout
