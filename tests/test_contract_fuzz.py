"""Contract fuzzing: Schemathesis generates requests from /openapi.json for every operation, as every role,
and checks no 5xx, responses match the documented schemas, status codes and content types (problem+json
on errors). Runs against a real server process on the test database server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.embedded import free_port

ROOT = Path(__file__).resolve().parents[1]
ROLES = ["admin", "compliance", "regional_manager", "branch_head", "inspector", "mystery_shopper"]
# make test runs one pass per role: FUZZ_EXAMPLES cases for every operation, bounded by count rather than time, so
# a slow machine takes longer instead of leaving operations untested (about 5-10 s a role, 40-60 s in all).
# FUZZ_SECONDS=300 digs deeper: each role fuzzes that long, pass after pass.
SECONDS_PER_ROLE = int(os.environ.get("FUZZ_SECONDS", "0"))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
# Logging out would end the session the rest of the run uses.
EXCLUDED = "^/api/v1/auth/logout$"


@pytest.fixture(scope="module")
def live_server(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    var_dir = tmp_path_factory.mktemp("fuzz-var")
    port = free_port()
    env = {**os.environ, "MONGODB_URI": mongo_uri, "DATABASE_NAME": f"fuzz_{uuid.uuid4().hex[:12]}",
           "JWT_SECRET": uuid.uuid4().hex * 2, "PORT": str(port), "VAR_DIR": str(var_dir),
           "LOG_LEVEL": "ERROR", "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024",
           "WEBHOOK_ALLOW_PRIVATE": "false", "LOGIN_MAX_FAILURES": "1000000", "LOGIN_FREE_FAILURES": "1000000",
           "LOGIN_ADDRESS_MAX_USERNAMES": "1000000", "SEED_DEMO": "true"}
    log = (var_dir / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    log.close()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=1) as resp:  # noqa: S310
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("server did not become ready: " + (var_dir / "server.log").read_text()[-3000:])
        if proc.poll() is not None:
            raise RuntimeError("server exited: " + (var_dir / "server.log").read_text()[-3000:])
        creds = json.loads((var_dir / "demo-credentials.json").read_text())
        tokens = {}
        for role in ROLES:
            req = urllib.request.Request(base + "/api/v1/auth/login", method="POST",  # noqa: S310
                                         data=json.dumps(creds[role]).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
                tokens[role] = json.loads(resp.read())["access_token"]
        yield base, tokens
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.slow
@pytest.mark.parametrize("role", [*ROLES, "anonymous"])
def test_every_operation_survives_fuzzing(live_server: tuple[str, dict[str, str]], role: str,
                                          tmp_path: Path) -> None:
    base, tokens = live_server
    # One worker: Hypothesis describes lambdas by parsing their source, and Python 3.11's parser is not safe
    # across threads ("AST constructor recursion depth mismatch" failed an operation now and then).
    cmd = [
        str(Path(sys.executable).parent / "schemathesis"), "run", f"{base}/openapi.json",
        "--checks", CHECKS, "--max-examples", str(EXAMPLES),
        "--phases", "examples,fuzzing", "--seed", "20261122",
        "--exclude-path-regex", EXCLUDED, "--request-timeout", "20", "--workers", "1",
        "--suppress-health-check", "all", "--warnings", "off", "--no-color",
    ]
    if SECONDS_PER_ROLE:
        cmd += ["--max-time", str(SECONDS_PER_ROLE)]
    if role != "anonymous":
        cmd += ["-H", f"Authorization: Bearer {tokens[role]}"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=SECONDS_PER_ROLE * 2 + 300,
                            cwd=tmp_path, env={**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT),
                                               "SCHEMATHESIS_HOOKS": "tests.fuzz_hooks"})
    output = result.stdout + result.stderr
    print(output[-3000:])
    assert result.returncode == 0, output[-6000:]
    # The run exercised every operation it selected (a schema that failed to load, or a run that ran out of time,
    # would leave some untested and still exit 0).
    selected = re.search(r"Selected: (\d+)/\d+", output)
    tested = re.search(r"Tested: (\d+)", output)
    assert selected and tested, output[-2000:]
    assert int(selected[1]) > 0 and tested[1] == selected[1], output[-2000:]
