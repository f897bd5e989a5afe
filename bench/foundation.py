"""Foundation benchmark: GET /api/v1/me throughput vs a bare aiohttp handler (1 and 2 workers), and the
time from `make run` (already installed) to /readyz 200."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import load_client
from bench.common import ROOT, get_bytes, post_json, save, start_api, stop, table, wait_ready
from server.embedded import EmbeddedMongo, free_port

DURATION_S = 5.0
CONCURRENCY = 32


def make_run_startup(var_dir: Path) -> float:
    """Seconds from invoking `make run` to /readyz 200 (embedded database, demo data on first start)."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "VAR_DIR": str(var_dir), "LOG_LEVEL": "WARNING"}
    env.pop("MONGODB_URI", None)
    started = time.perf_counter()
    proc = subprocess.Popen(["make", "-s", "run"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", timeout_s=120)
        return time.perf_counter() - started
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def main() -> None:
    db = EmbeddedMongo(":memory:")
    db.start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-foundation-"))
    figures: dict[str, object] = {}
    try:
        api, port = start_api(db.uri, tmp / "var", extra_env={"SEED_DEMO": "true"})
        creds = json.loads((tmp / "var" / "demo-credentials.json").read_text())["inspector"]
        token = post_json(f"http://127.0.0.1:{port}/api/v1/auth/login", creds)["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        body = get_bytes(f"http://127.0.0.1:{port}/api/v1/me", token)
        (tmp / "me.json").write_bytes(body)
        bare_port = free_port()
        bare = subprocess.Popen([sys.executable, "-m", "bench.bare_server", "--port", str(bare_port),
                                 "--body-file", str(tmp / "me.json")], cwd=ROOT, stderr=subprocess.DEVNULL)
        wait_ready(f"http://127.0.0.1:{bare_port}/x")
        figures["bare"] = load_client.run(f"http://127.0.0.1:{bare_port}/api/v1/me", headers, CONCURRENCY, DURATION_S)
        figures["me_1_worker"] = load_client.run(f"http://127.0.0.1:{port}/api/v1/me", headers, CONCURRENCY,
                                                 DURATION_S)
        stop(api)
        api2, port2 = start_api(db.uri, tmp / "var", workers=2)
        figures["me_2_workers"] = load_client.run(f"http://127.0.0.1:{port2}/api/v1/me", headers, CONCURRENCY,
                                                  DURATION_S)
        stop(api2)
        stop(bare)
    finally:
        db.stop()
    figures["make_run_first_start_s"] = make_run_startup(tmp / "fresh-var")
    figures["make_run_restart_s"] = make_run_startup(tmp / "fresh-var")
    bare_rps = figures["bare"]["rps"]  # type: ignore[index]
    rows = [
        ("bare aiohttp handler", f"{bare_rps:,.0f} req/s"),
    ]
    for key, label in (("me_1_worker", "GET /me, 1 worker"), ("me_2_workers", "GET /me, --workers 2")):
        f = figures[key]
        rows.append((label, f"{f['rps']:,.0f} req/s = {f['rps'] / bare_rps:.2f}x bare; "  # type: ignore[index]
                            f"p50 {f['p50_ms']:.1f} ms, p95 {f['p95_ms']:.1f} ms; statuses {f['statuses']}"))  # type: ignore[index]
    rows.append(("make run -> /readyz (first start)", f"{figures['make_run_first_start_s']:.2f} s"))
    rows.append(("make run -> /readyz (restart)", f"{figures['make_run_restart_s']:.2f} s"))
    print(f"foundation benchmark (concurrency {CONCURRENCY}, {DURATION_S:.0f} s each)")
    print(table(rows))
    save("foundation", figures)


if __name__ == "__main__":
    main()
