"""Runtime configuration, read once from the environment by the entry point."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the service; each is an environment variable of the same name, upper-cased."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    mongodb_uri: str | None = Field(default=None, description="External MongoDB; unset = embedded SecantusDB")
    # Which embedded SecantusDB server runs: unset = the Rust one when `make embedded` built it, else Python.
    embedded_db: Literal["rust", "python"] | None = None
    embedded_db_binary: Path | None = Field(default=None, description="secantusd-rs to run instead of the cached one")
    database_name: str = "branch_audit"
    host: str = "127.0.0.1"
    port: int = 8080
    var_dir: Path = Path("var")
    jwt_secret: str | None = Field(default=None, description="Required with MONGODB_URI")
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 24 * 3600
    login_max_failures: int = 5
    login_window_s: int = 900
    max_upload_bytes: int = 20 * 1024 * 1024
    max_json_bytes: int = 1024 * 1024
    # A connection that has not sent a whole request by then is closed (slowloris-style header trickling).
    keepalive_timeout_s: float = 15.0
    # A request body trickled slower than this is answered 408.
    body_read_timeout_s: float = 30.0
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    seed_demo: bool = True
    publish_checklists: bool = True
    checklists_dir: Path = Path("checklists")
    webhook_allow_private: bool = False
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "branch-audit@localhost"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    email_max_attempts: int = 8
    # Rectification deadlines and reminders (server/domain/deadlines.py, server/domain/reminders.py)
    due_end_of_day: str = Field(default="18:00", description="Local time a deadline day ends, e.g. 23:59:59")
    reminder_before_hours: str = "48,24"
    reminder_overdue_every_hours: float = 24
    escalate_regional_after_hours: float = 24
    escalate_compliance_after_hours: float = 72
    quiet_hours: str = Field(default="20:00-08:00", description="Local hours in which reminders wait")
    digest_local_time: str = "08:30"
    reminder_sweep_interval_s: float = 30
    sse_poll_s: float = 2.0
    sse_heartbeat_s: float = 15.0
    run_jobs: bool = True
    db_timeout_ms: int = 2000
    db_socket_timeout_ms: int = 5000
    # How long the driver's heartbeat waits for the database (0: db_timeout_ms). A missed heartbeat makes the
    # driver drop its connections and cancel what is in flight; one-shot commands raise it.
    db_heartbeat_timeout_ms: int = 0
    # How long a request's transaction may keep retrying before the API answers 503.
    db_transaction_budget_s: float = 8.0
    photo_retention_days: int = 3650
    # Scheduled backups (server/jobs/backups.py): none while BACKUP_DIR is unset. Put it on another disk.
    backup_dir: Path | None = None
    backup_every_h: float = Field(default=24.0, gt=0)
    backup_keep: int = Field(default=7, ge=1)
    appeal_window_days: int = 14

    def jwt_secret_or_generated(self) -> str:
        """The configured secret, or for the embedded default one kept under var/ across restarts."""
        if self.jwt_secret:
            return self.jwt_secret
        if self.mongodb_uri:
            raise SystemExit("JWT_SECRET must be set when MONGODB_URI is set (all instances must share it)")
        path = self.var_dir / "jwt-secret"
        if path.exists():
            return path.read_text().strip()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        path.write_text(secret)
        path.chmod(0o600)
        return secret
