"""Helpers shared by the benchmarks: processes, ports, readiness, result files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from server.embedded import free_port

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def wait_ready(url: str, timeout_s: float = 60.0) -> float:
    """Seconds until `url` answers 200."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback only
                if resp.status == 200:
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"{url} not ready after {timeout_s}s")


def start_api(
    uri: str, var_dir: Path, *, workers: int = 1, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ, "MONGODB_URI": uri, "JWT_SECRET": "bench-secret-" + "x" * 32, "PORT": str(port),
        "VAR_DIR": str(var_dir), "LOG_LEVEL": "WARNING", **(extra_env or {}),
    }
    cmd = [sys.executable, "-m", "server.cli", "serve", "--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(f"http://127.0.0.1:{port}/readyz")
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def post_json(url: str, body: dict[str, Any], token: str | None = None) -> Any:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",  # noqa: S310
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback only
        return json.loads(resp.read())


def get_bytes(url: str, token: str | None = None) -> bytes:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})  # noqa: S310
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback only
        return bytes(resp.read())


def save(name: str, figures: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)
