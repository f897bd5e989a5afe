"""The embedded default: a SecantusDB child process (GPL-2.0, so run, never imported or linked).

Two servers share one on-disk format: `secantusd-rs` (Rust, built once per machine by `make embedded`) and
`secantusd-py` (Python, installed with the project), the fallback when the Rust one could not be built."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger("branch_audit.embedded")

# mk/embedded.mk reads this line: the Makefile builds and caches exactly this version.
SECANTUSD_RS_VERSION = "0.5.3-beta.193"
IN_MEMORY = ":memory:"
SCRATCH_PREFIX = "branch-audit-db-"

ServerKind = Literal["rust", "python"]
class EmbeddedDatabaseError(RuntimeError):
    """The embedded server could not start; the message is one readable line."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rust_server_path() -> Path:
    """Where `make embedded` puts secantusd-rs: outside the clone, keyed by version, so clones share it."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "branch-audit" / "secantusd-rs" / SECANTUSD_RS_VERSION / "bin" / "secantusd-rs"


def _python_server_path() -> str:
    # Prefer the script next to our interpreter (the project's virtualenv).
    candidate = Path(sys.executable).parent / "secantusd-py"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("secantusd-py")
    if not found:
        raise EmbeddedDatabaseError("secantusd-py not found: install the project (make run does) or set MONGODB_URI")
    return found


@dataclass(frozen=True)
class EmbeddedServer:
    """Which SecantusDB server runs, and its executable."""

    kind: ServerKind
    executable: str

    @classmethod
    def choose(cls, preference: ServerKind | None = None, rust_binary: Path | None = None) -> EmbeddedServer:
        """`preference` as EMBEDDED_DB says; unset means the Rust server when it was built, else the Python one."""
        binary = rust_binary or rust_server_path()
        built = binary.is_file() and os.access(binary, os.X_OK)
        if preference == "python":
            return cls("python", _python_server_path())
        if built:
            return cls("rust", str(binary))
        if preference == "rust":
            raise EmbeddedDatabaseError(
                f"embedded database: EMBEDDED_DB=rust but {binary} is missing (run make embedded)")
        _warn_fallback_once(binary)
        return cls("python", _python_server_path())

    @classmethod
    def from_settings(cls) -> EmbeddedServer:
        """The choice the environment makes (EMBEDDED_DB, EMBEDDED_DB_BINARY); read when a server starts."""
        from server.settings import Settings

        settings = Settings()
        return cls.choose(settings.embedded_db, settings.embedded_db_binary)


_fallback_warned = False


def _warn_fallback_once(binary: Path) -> None:
    global _fallback_warned
    if not _fallback_warned:
        _fallback_warned = True
        log.warning("secantusd-rs is not built (%s); using the Python fallback secantusd-py", binary)


def _explain_failure(storage: str, log_tail: str) -> str:
    lowered = log_tail.lower()
    if "resource busy" in lowered or "lock" in lowered:
        return (f"embedded database: data directory {storage} is in use by another process "
                "(is the server already running?)")
    if "permission denied" in lowered or "read-only" in lowered:
        return f"embedded database: data directory {storage} is not writable"
    if "wt_panic" in lowered or "corrupt" in lowered or "checksum" in lowered:
        return f"embedded database: data in {storage} looks corrupt; restore it from a backup or move it aside"
    last = next((line.strip() for line in reversed(log_tail.splitlines()) if line.strip()), "no output")
    return f"embedded database failed to start from {storage}: {last[:300]}"


def _remove_abandoned_scratch(base: Path) -> None:
    """Throwaway data directories of processes that died without removing theirs (SIGKILL): in RAM, so they
    would add up. The owner's pid is in the name."""
    if not Path("/proc/self").exists():
        return  # no way to tell a live owner here
    for scratch in base.glob(f"{SCRATCH_PREFIX}*-*"):
        owner = scratch.name[len(SCRATCH_PREFIX):].split("-", 1)[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            shutil.rmtree(scratch, ignore_errors=True)


def _stop_with_parent() -> Callable[[], None] | None:
    """Linux: the database gets SIGTERM (a clean stop) when the process that started it dies, even by SIGKILL.
    Otherwise it lives on holding its data directory, so a restarted server cannot open it (seen: two dozen
    test servers left running by killed test runs). Resolved before the fork; only the call runs in the child."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def set_death_signal() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)

    return set_death_signal


def _all_threads_stopped(pid: int) -> bool:
    try:
        states = [(task / "stat").read_text().rsplit(")", 1)[1].split()[0]
                  for task in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        return True  # no /proc (not Linux) or the process is gone: nothing more to wait for
    return all(state in ("T", "t") for state in states)


class EmbeddedMongo:
    """Starts and stops one SecantusDB process on 127.0.0.1.

    `storage_path` ":memory:" is a throwaway data directory (tests, benchmarks), removed at stop; it is
    not made durable, since nothing in it outlives the process."""

    def __init__(self, storage_path: str, *, port: int | None = None, log_path: Path | None = None,
                 extra_args: Sequence[str] = (), server: EmbeddedServer | None = None) -> None:
        self.storage_path = storage_path
        self.port = port or free_port()
        self.log_path = log_path
        self.extra_args = list(extra_args)
        self.server = server
        self.process: subprocess.Popen[bytes] | None = None
        self._scratch: str | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    @property
    def kind(self) -> ServerKind:
        return self._server().kind

    def _server(self) -> EmbeddedServer:
        if self.server is None:
            self.server = EmbeddedServer.from_settings()
        return self.server

    def command(self, server: EmbeddedServer) -> list[str]:
        """The command line that starts `server` on this data directory."""
        in_memory = self.storage_path == IN_MEMORY
        storage = self.storage_path
        if in_memory and server.kind == "rust":
            # secantusd-rs has no in-memory mode: a scratch directory, in RAM where the host has /dev/shm.
            if self._scratch is None:
                base = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else Path(tempfile.gettempdir())  # noqa: S108
                _remove_abandoned_scratch(base)
                self._scratch = tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=base)
            storage = self._scratch
        cmd = [server.executable, "--host", "127.0.0.1", "--port", str(self.port), "--storage-path", storage,
               "--log-level", "WARNING"]
        if not in_memory:
            # Without it, writes acknowledged with w=majority,j=true are lost when the server is SIGKILLed:
            # measured, secantusd-rs lost 13 of ~300 journaled inserts and 14 of ~100 transactions,
            # secantusd-py 14 transactions (tests/test_embedded_durability.py; none lost with it).
            cmd.append("--sync-on-commit")
        if server.kind == "rust":
            # Its write-ahead log files are allocated in full (default 128 MB each); 32 MB keeps a small store
            # small. Its default cache is 4 GB; the Python server's 1 GB is ample for one branch network.
            cmd += ["--log-file-max", "32MB", "--cache-size", "1G"]
        return [*cmd, *self.extra_args]

    def start(self, timeout_s: float = 30.0) -> None:
        if self.storage_path != IN_MEMORY:
            try:
                Path(self.storage_path).mkdir(parents=True, exist_ok=True)
                probe = Path(self.storage_path) / ".write-test"
                probe.write_text("ok")
                probe.unlink()
            except OSError as exc:
                raise EmbeddedDatabaseError(
                    f"embedded database: data directory {self.storage_path} is not writable ({exc.strerror})"
                ) from None
        cmd = self.command(self._server())
        log_file = Path(self.log_path) if self.log_path else None
        out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115 - closed below
        # Own process group: a Ctrl-C in the terminal reaches us first, and we stop the database last.
        try:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                            preexec_fn=_stop_with_parent())
        finally:
            if not isinstance(out, int):
                out.close()  # the child holds its own descriptor
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = log_file.read_text(errors="replace")[-4000:] if log_file and log_file.exists() else ""
                raise EmbeddedDatabaseError(_explain_failure(self.storage_path, tail))
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.02)
        self.stop()
        raise EmbeddedDatabaseError(f"embedded database did not start listening within {timeout_s:.0f}s")

    def stop(self, timeout_s: float = 15.0) -> None:
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def kill(self) -> None:
        """SIGKILL, as a crash would (tests use it to prove durability)."""
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def pause(self, timeout_s: float = 2.0) -> None:
        """SIGSTOP, as a frozen host would; returns once every thread has stopped. A thread of the
        multi-threaded Rust server may still answer a request sent right after the signal (seen: 1 in 3)."""
        if not self.process:
            return
        os.kill(self.process.pid, signal.SIGSTOP)
        deadline = time.monotonic() + timeout_s
        while not _all_threads_stopped(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.001)

    def resume(self) -> None:
        if self.process:
            os.kill(self.process.pid, signal.SIGCONT)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)
