"""The README's two commands are the ones CI and the Makefile actually use."""

from __future__ import annotations

import re
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
        for match in re.finditer(r"^\s*(?:from|import)\s+([A-Za-z_][A-Za-z0-9_]*)", path.read_text(), re.M):
            top = match.group(1)
            if top in stdlib_and_local or top in sys.stdlib_module_names:
                continue
            name = import_names.get(top.lower(), top.lower())
            if name not in declared:
                missing.add(f"{top} ({path.relative_to(ROOT)})")
    assert not missing, f"imported but not pinned in pyproject.toml: {sorted(missing)}"
