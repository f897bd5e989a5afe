"""Runtime configuration, read once from the environment by the entry point."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the service; each is an environment variable of the same name, upper-cased."""

    # Frozen once read: a change is a new copy (model_copy(update=...)) made before the services are built,
    # so nothing derived from the settings at start-up can silently disagree with them later.
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore", frozen=True)

    mongodb_uri: str | None = Field(default=None, description="External MongoDB; unset = embedded SecantusDB")
    # Which embedded SecantusDB server runs: unset = the Rust one when `make embedded` built it, else Python.
    embedded_db: Literal["rust", "python"] | None = None
    embedded_db_binary: Path | None = Field(default=None, description="secantusd-rs to run instead of the cached one")
    database_name: str = "branch_audit"
    host: str = "127.0.0.1"
    port: int = 8080
    var_dir: Path = Path("var")
    jwt_secret: str | None = Field(default=None, description="Required with MONGODB_URI; at least 32 bytes")
    # Docker and Kubernetes mount secrets as files: each secret may instead be read from one (*_FILE).
    jwt_secret_file: Path | None = None
    # The secret before the last rotation: its tokens keep working for one access-token lifetime.
    jwt_previous_secret: str | None = None
    jwt_previous_secret_file: Path | None = None
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 24 * 3600
    # Login throttling (server/domain/login_throttle.py, numbers explained in the README).
    login_free_failures: int = 3
    login_max_failures: int = 10
    login_window_s: int = 900
    login_max_delay_s: int = 300
    login_address_max_usernames: int = 30
    # Comma-separated addresses or CIDRs of proxies whose X-Forwarded-For entries are believed.
    trusted_proxies: str = ""
    # How long an instance may answer from its authentication cache (revocations clear it at once).
    auth_cache_s: float = 30.0
    download_ticket_ttl_s: int = 30
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
    # Unset: seed the demo organisation only on the embedded database; with MONGODB_URI only when set to true.
    seed_demo: bool | None = None
    publish_checklists: bool = True
    checklists_dir: Path = Path("checklists")
    webhook_allow_private: bool = False
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "branch-audit@localhost"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_password_file: Path | None = None
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
    # Paces a backup's photo bytes (MB/s, 0 = unpaced) so that it leaves the database to the phones.
    backup_max_mb_s: float = Field(default=0.0, ge=0)
    appeal_window_days: int = 14

    @model_validator(mode="after")
    def _read_secret_files(self) -> Settings:
        # SystemExit, not ValueError: start-up stops with one readable line instead of a validation report.
        for name in ("jwt_secret", "jwt_previous_secret", "smtp_password"):
            path: Path | None = getattr(self, f"{name}_file")
            if path is None:
                continue
            if getattr(self, name):
                raise SystemExit(f"{name.upper()} and {name.upper()}_FILE are both set; set one")
            try:
                value = path.read_text().strip()
            except OSError as exc:
                raise SystemExit(f"{name.upper()}_FILE: cannot read {path}: {exc.strerror}") from None
            # Still building the settings: the one write before they are frozen for good.
            object.__setattr__(self, name, SecretStr(value) if name == "smtp_password" else value)
        return self

    def should_seed_demo(self) -> bool:
        """Demo data is for demos: a bank's own database gets it only when asked for explicitly."""
        return self.seed_demo if self.seed_demo is not None else not self.mongodb_uri

    def jwt_secret_or_generated(self) -> str:
        """The configured secret, or for the embedded default one kept under var/ across restarts."""
        if self.jwt_secret:
            from server.security import weak_secret_reason

            for name, secret in (("JWT_SECRET", self.jwt_secret), ("JWT_PREVIOUS_SECRET", self.jwt_previous_secret)):
                reason = weak_secret_reason(secret) if secret else None
                if reason:
                    raise SystemExit(f"{name} {reason}; make one with: openssl rand -base64 48")
            return self.jwt_secret
        if self.mongodb_uri:
            raise SystemExit("JWT_SECRET must be set when MONGODB_URI is set (all instances must share it); "
                             "make one with: openssl rand -base64 48")
        path = self.var_dir / "jwt-secret"
        if path.exists():
            return path.read_text().strip()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        path.write_text(secret)
        path.chmod(0o600)
        return secret
