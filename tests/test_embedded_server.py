"""Which embedded server runs: the Rust one when `make embedded` built it, else the Python fallback, said once;
EMBEDDED_DB=rust|python chooses."""

from __future__ import annotations

import logging
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
