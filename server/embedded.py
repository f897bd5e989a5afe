"""The embedded default: a SecantusDB child process (GPL-2.0, so run, never imported)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path


class EmbeddedDatabaseError(RuntimeError):
    """The embedded server could not start; the message is one readable line."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_command() -> str:
    # Prefer the script next to our interpreter (the project's virtualenv).
    candidate = Path(sys.executable).parent / "secantusd-py"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("secantusd-py")
    if not found:
        raise EmbeddedDatabaseError("secantusd-py not found: install the project (make run does) or set MONGODB_URI")
    return found


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


class EmbeddedMongo:
    """Starts and stops one SecantusDB process on 127.0.0.1."""

    def __init__(self, storage_path: str, *, port: int | None = None, log_path: Path | None = None,
                 extra_args: Sequence[str] = ()) -> None:
        self.storage_path = storage_path
        self.port = port or free_port()
        self.log_path = log_path
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self, timeout_s: float = 30.0) -> None:
        if self.storage_path != ":memory:":
            try:
                Path(self.storage_path).mkdir(parents=True, exist_ok=True)
                probe = Path(self.storage_path) / ".write-test"
                probe.write_text("ok")
                probe.unlink()
            except OSError as exc:
                raise EmbeddedDatabaseError(
                    f"embedded database: data directory {self.storage_path} is not writable ({exc.strerror})"
                ) from None
        log_file = Path(self.log_path) if self.log_path else None
        out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115 - closed below
        cmd = [
            _server_command(),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--storage-path", self.storage_path,
            "--log-level", "WARNING",
            # Measured here: without it, a transaction acknowledged with w=majority,j=true was lost when
            # the server was SIGKILLed (0 of 3 survived; 3 of 3 with it), at no measurable cost.
            "--sync-on-commit",
            *self.extra_args,
        ]
        # Own process group: a Ctrl-C in the terminal reaches us first, and we stop the database last.
        try:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
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
            time.sleep(0.05)
        self.stop()
        raise EmbeddedDatabaseError(f"embedded database did not start listening within {timeout_s:.0f}s")

    def stop(self, timeout_s: float = 15.0) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash would (tests use it to prove durability)."""
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def pause(self) -> None:
        if self.process:
            os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process:
            os.kill(self.process.pid, signal.SIGCONT)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)
