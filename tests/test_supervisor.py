"""`branch-audit serve --workers 2` on the embedded database: both processes share the port, and the service
recovers by itself when the database or a worker is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from server.embedded import free_port

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback only
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _wait_ready(base: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _status(base + "/readyz") == 200:
            return
        time.sleep(0.1)
    raise AssertionError("not ready")


def _run_state(var_dir: Path) -> dict[str, object]:
    return dict(json.loads((var_dir / "run.json").read_text()))


def test_workers_share_the_port_and_recover_from_kills(tmp_path: Path) -> None:
    port = free_port()
    var_dir = tmp_path / "var"
    env = {**os.environ, "PORT": str(port), "VAR_DIR": str(var_dir), "LOG_LEVEL": "INFO",
           "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024", "RUN_JOBS": "false"}
    env.pop("MONGODB_URI", None)
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--workers", "2"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base)
        state = _run_state(var_dir)
        workers = list(state["worker_pids"])  # type: ignore[call-overload]
        assert len(workers) == 2
        assert (var_dir / "demo-credentials.json").exists()

        os.kill(int(state["db_pid"]), signal.SIGKILL)  # type: ignore[call-overload]
        time.sleep(0.5)
        _wait_ready(base, 30)
        assert _run_state(var_dir)["db_pid"] != state["db_pid"]

        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            current = list(_run_state(var_dir)["worker_pids"])  # type: ignore[call-overload]
            if workers[0] not in current and len(current) == 2:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("worker not replaced")
        for _ in range(20):
            assert _status(base + "/readyz") == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert not (var_dir / "run.json").exists()
    # The database was stopped with the server: its data directory can be opened again at once.
    restarted = subprocess.Popen([sys.executable, "-m", "server.cli", "serve"], cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(base)
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=30)
