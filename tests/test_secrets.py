"""Secrets: weak or placeholder signing secrets stop start-up in one line; secrets can come from files;
demo data only when asked for on a bank's own database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from server.app import prepare_database
from server.context import Services
from server.security import weak_secret_reason
from server.settings import Settings
from tests.conftest import reconfigure

STRONG = "k" * 20 + "Zq9-Xv2_Lm7+Rt4/Wy8="


def _serve(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "MONGODB_", "TRUSTED_"))}
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--port", "18083"],
        env={**clean, "VAR_DIR": str(tmp_path / "var"), "MONGODB_URI": "mongodb://127.0.0.1:1/", **env},
        capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.mark.parametrize("secret", ["short-secret", "change-me-to-a-long-random-secret",
                                    "please-change-me-please-change-me-please"])
def test_a_short_or_placeholder_secret_stops_start_up_in_one_line(secret: str, tmp_path: Path) -> None:
    result = _serve({"JWT_SECRET": secret}, tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("JWT_SECRET ") and "openssl rand" in lines[0]


def test_no_secret_with_a_database_url_stops_start_up_in_one_line(tmp_path: Path) -> None:
    result = _serve({}, tmp_path)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1 and "JWT_SECRET must be set" in result.stderr


def test_a_bad_trusted_proxy_entry_stops_start_up_in_one_line(tmp_path: Path) -> None:
    result = _serve({"JWT_SECRET": STRONG, "TRUSTED_PROXIES": "10.0.0.0/8, not-an-ip"}, tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == ["TRUSTED_PROXIES: 'not-an-ip' is not an address or CIDR"]


def test_weak_secret_reasons() -> None:
    assert weak_secret_reason(STRONG) is None
    assert weak_secret_reason("x" * 31) == "is shorter than 32 bytes"
    assert weak_secret_reason("CHANGE-ME-" + "x" * 40) == "is a published placeholder"


def test_secrets_can_come_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "jwt").write_text(STRONG + "\n")
    (tmp_path / "smtp").write_text("smtp-pass\n")
    monkeypatch.setenv("JWT_SECRET_FILE", str(tmp_path / "jwt"))
    monkeypatch.setenv("SMTP_PASSWORD_FILE", str(tmp_path / "smtp"))
    settings = Settings(mongodb_uri="mongodb://db/")
    assert settings.jwt_secret == STRONG
    assert settings.smtp_password is not None and settings.smtp_password.get_secret_value() == "smtp-pass"
    assert settings.jwt_secret_or_generated() == STRONG


def test_a_secret_and_its_file_together_or_a_missing_file_are_refused(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET_FILE", str(tmp_path / "absent"))
    with pytest.raises(SystemExit, match="JWT_SECRET_FILE: cannot read"):
        Settings()
    (tmp_path / "jwt").write_text(STRONG)
    monkeypatch.setenv("JWT_SECRET_FILE", str(tmp_path / "jwt"))
    monkeypatch.setenv("JWT_SECRET", STRONG)
    with pytest.raises(SystemExit, match="both set"):
        Settings()


def test_a_weak_previous_secret_is_refused_too() -> None:
    settings = Settings(mongodb_uri="mongodb://db/", jwt_secret=STRONG, jwt_previous_secret="old")
    with pytest.raises(SystemExit, match="JWT_PREVIOUS_SECRET is shorter"):
        settings.jwt_secret_or_generated()


def test_demo_data_only_when_asked_for_on_a_banks_database() -> None:
    assert Settings(mongodb_uri=None).should_seed_demo() is True
    assert Settings(mongodb_uri="mongodb://db/").should_seed_demo() is False
    assert Settings(mongodb_uri="mongodb://db/", seed_demo=True).should_seed_demo() is True
    assert Settings(mongodb_uri=None, seed_demo=False).should_seed_demo() is False


async def test_a_banks_database_starts_empty_unless_demo_data_is_asked_for(services: Services) -> None:
    reconfigure(services, seed_demo=None)  # as docker-compose.yml leaves it; MONGODB_URI is set
    await prepare_database(services)
    assert await services.db.users.count_documents({}) == 0
    reconfigure(services, seed_demo=True)
    await prepare_database(services)
    assert await services.db.users.count_documents({"role": "admin"}) == 1
