"""Keeps the processes of `branch-audit serve` alive: the embedded database and the worker processes are
restarted if they die, so the service recovers by itself from a crash of either."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from server.embedded import EmbeddedDatabaseError, EmbeddedMongo

log = logging.getLogger("branch_audit.supervisor")

# A process that keeps dying is restarted at most this often, so a broken install does not spin.
RESTART_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)


class RunState:
    """var/run.json: which processes serve this directory (for operators and the fault-injection tools)."""

    def __init__(self, var_dir: Path) -> None:
        self.path = var_dir / "run.json"
        self.state: dict[str, Any] = {"supervisor_pid": os.getpid()}
        self._lock = threading.Lock()

    def update(self, **values: Any) -> None:
        with self._lock:
            self.state.update(values)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state, indent=2))
            tmp.replace(self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class DatabaseWatchdog(threading.Thread):
    """Restarts the embedded database on the same port and data directory when it exits unexpectedly."""

    def __init__(self, embedded: EmbeddedMongo, run_state: RunState) -> None:
        super().__init__(name="db-watchdog", daemon=True)
        self.embedded = embedded
        self.run_state = run_state
        self.stopping = threading.Event()
        self.restarts = 0

    def run(self) -> None:
        failures = 0
        while not self.stopping.wait(0.25):
            proc = self.embedded.process
            if proc is None or proc.poll() is None:
                continue
            if self.stopping.is_set():
                return
            log.warning("embedded database exited; restarting", extra={"exit_code": proc.returncode})
            time.sleep(RESTART_BACKOFF_S[min(failures, len(RESTART_BACKOFF_S) - 1)])
            try:
                self.embedded.start()
            except EmbeddedDatabaseError as exc:
                failures += 1
                log.error("embedded database restart failed", extra={"error": str(exc)})
                continue
            failures = 0
            self.restarts += 1
            self.run_state.update(db_pid=self.embedded.process.pid if self.embedded.process else None)

    def stop(self) -> None:
        self.stopping.set()


def supervise_workers(env: dict[str, str], workers: int, run_state: RunState,
                      on_worker_death: Callable[[], None] | None = None) -> int:
    """Run `workers` server processes sharing the port; replace any that dies until told to stop
    (`on_worker_death` first cleans up after it)."""
    stopping = threading.Event()

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--worker"], env=env)

    procs = [spawn() for _ in range(workers)]
    run_state.update(worker_pids=[p.pid for p in procs])

    def forward(signum: int, _frame: object) -> None:
        stopping.set()
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    deaths = 0
    while not stopping.is_set():
        time.sleep(0.25)
        for i, proc in enumerate(procs):
            if proc.poll() is not None and not stopping.is_set():
                log.warning("worker exited; replacing it", extra={"pid": proc.pid, "exit_code": proc.returncode})
                if on_worker_death is not None:
                    on_worker_death()
                time.sleep(RESTART_BACKOFF_S[min(deaths, len(RESTART_BACKOFF_S) - 1)])
                deaths += 1
                procs[i] = spawn()
                run_state.update(worker_pids=[p.pid for p in procs])
    codes = [proc.wait() for proc in procs]
    return max((c for c in codes if c > 0), default=0)
