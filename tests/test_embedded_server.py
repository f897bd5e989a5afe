"""Which embedded server runs: the Rust one when `make embedded` built it, else the Python fallback, said once;
EMBEDDED_DB=rust|python chooses."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from server import embedded
from server.embedded import EmbeddedDatabaseError, EmbeddedMongo, EmbeddedServer


def _built(tmp_path: Path) -> Path:
    binary = tmp_path / "bin" / "secantusd-rs"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    return binary


def test_unset_choice_runs_the_rust_server_when_it_was_built(tmp_path: Path) -> None:
    binary = _built(tmp_path)
    chosen = EmbeddedServer.choose(None, binary)
    assert chosen == EmbeddedServer("rust", str(binary))


def test_without_the_rust_server_the_python_one_runs_and_says_so_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "_fallback_warned", False)
    with caplog.at_level(logging.WARNING, logger="branch_audit.embedded"):
        first = EmbeddedServer.choose(None, tmp_path / "missing")
        second = EmbeddedServer.choose(None, tmp_path / "missing")
    assert first.kind == second.kind == "python"
    assert first.executable.endswith("secantusd-py")
    assert [r.getMessage() for r in caplog.records] == [
        f"secantusd-rs is not built ({tmp_path / 'missing'}); using the Python fallback secantusd-py"]


def test_embedded_db_python_runs_the_python_server_even_when_rust_was_built(tmp_path: Path) -> None:
    assert EmbeddedServer.choose("python", _built(tmp_path)).kind == "python"


def test_embedded_db_rust_without_the_binary_is_one_readable_line(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedDatabaseError) as info:
        EmbeddedServer.choose("rust", tmp_path / "missing")
    assert "make embedded" in str(info.value) and "\n" not in str(info.value)


def test_the_choice_is_read_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = _built(tmp_path)
    monkeypatch.setenv("EMBEDDED_DB_BINARY", str(binary))
    assert EmbeddedServer.from_settings() == EmbeddedServer("rust", str(binary))
    monkeypatch.setenv("EMBEDDED_DB", "python")
    assert EmbeddedServer.from_settings().kind == "python"


@pytest.mark.parametrize("kind", ["rust", "python"])
def test_a_throwaway_database_is_not_synced_and_a_real_one_is(kind: embedded.ServerKind, tmp_path: Path) -> None:
    server = EmbeddedServer(kind, "secantusd")
    assert "--sync-on-commit" not in EmbeddedMongo(":memory:", server=server).command(server)
    assert "--sync-on-commit" in EmbeddedMongo(str(tmp_path), server=server).command(server)


def test_a_throwaway_rust_database_is_removed_when_it_stops(tmp_path: Path) -> None:
    if not embedded.rust_server_path().exists():
        pytest.skip("secantusd-rs is not built on this machine (make embedded)")
    server = EmbeddedMongo(":memory:", server=EmbeddedServer.choose("rust"))
    server.start()
    scratch = server._scratch
    assert scratch is not None and Path(scratch).is_dir()
    server.stop()
    assert not Path(scratch).exists()


def test_the_database_stops_when_the_process_that_started_it_is_killed(tmp_path: Path) -> None:
    """Else it outlives a SIGKILLed server or test run, holding its data directory."""
    script = ("import sys, time\n"
              "from server.embedded import EmbeddedMongo\n"
              "server = EmbeddedMongo(sys.argv[1])\n"
              "server.start()\n"
              "print(server.process.pid, flush=True)\n"
              "time.sleep(60)\n")
    with subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "db")], stdout=subprocess.PIPE,
                          text=True, cwd=Path(__file__).resolve().parents[1]) as starter:
        assert starter.stdout is not None
        database_pid = int(starter.stdout.readline())
        os.kill(starter.pid, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _alive(database_pid):
        time.sleep(0.1)
    assert not _alive(database_pid), "the database outlived the process that started it"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_throwaway_directory_left_by_a_killed_process_is_removed_by_the_next_start(tmp_path: Path,
                                                                                    monkeypatch: pytest.MonkeyPatch
                                                                                    ) -> None:
    if not embedded.rust_server_path().exists():
        pytest.skip("secantusd-rs is not built on this machine (make embedded)")
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(os, "access", lambda path, mode: path != "/dev/shm")
    with subprocess.Popen([sys.executable, "-c", "pass"]) as gone:
        pass
    abandoned = tmp_path / f"{embedded.SCRATCH_PREFIX}{gone.pid}-abc"
    ours = tmp_path / f"{embedded.SCRATCH_PREFIX}{os.getpid()}-abc"
    abandoned.mkdir()
    ours.mkdir()
    server = EmbeddedMongo(":memory:", server=EmbeddedServer.choose("rust"))
    server.start()
    try:
        assert server._scratch is not None and Path(server._scratch).parent == tmp_path
    finally:
        server.stop()
    assert not abandoned.exists() and ours.exists()
