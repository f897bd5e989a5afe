"""`branch-audit backup create|verify|restore PATH`: whole-database backups, taken while the server serves.

Against MONGODB_URI, or the embedded database: the running server's (found through VAR_DIR/run.json) when
one serves this VAR_DIR, else one started for the command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from server.settings import Settings

Work = Callable[[Any, Any], Awaitable[int]]
# A one-shot command may read for long: a short heartbeat would cancel a large find on the embedded server.
HEARTBEAT_TIMEOUT_MS = 600_000


def register(subparsers: Any) -> None:
    backup = subparsers.add_parser("backup", help="back up and restore the whole database, photos included")
    commands = backup.add_subparsers(dest="backup_command", required=True)
    create = commands.add_parser("create", help="write a consistent backup of the database into PATH "
                                                "(a new directory), while the server keeps serving")
    create.add_argument("path", type=Path)
    create.add_argument("--max-mb-s", type=float, default=None,
                        help="pace the photo bytes to leave the database to the phones (default: BACKUP_MAX_MB_S, "
                             "0 = unpaced)")
    create.set_defaults(func=cmd_create)
    verify = commands.add_parser("verify", help="check a backup's checksums and counts without restoring it")
    verify.add_argument("path", type=Path)
    verify.set_defaults(func=cmd_verify)
    restore = commands.add_parser("restore", help="restore the backup at PATH into an empty database, then "
                                                  "verify the counts and the trail")
    restore.add_argument("path", type=Path)
    restore.add_argument("--force", action="store_true",
                         help="replace the contents of a database that is not empty (they are dropped)")
    restore.set_defaults(func=cmd_restore)


class ProgressLine:
    """Progress on stderr, at most once a second per stage (and always the last step of a stage)."""

    def __init__(self, verb: str) -> None:
        self.verb = verb
        self.last: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if (total is not None and done >= total) or now - self.last.get(stage, 0.0) >= 1.0:
            self.last[stage] = now
            of = f"/{total}" if total is not None else ""
            print(f"{self.verb}: {stage} {done}{of}", file=sys.stderr, flush=True)


def running_database(var_dir: Path) -> str | None:
    """The URI of the embedded database a running `branch-audit serve` holds for this VAR_DIR, if any."""
    try:
        state = json.loads((var_dir / "run.json").read_text())
        pid, port = int(state["supervisor_pid"]), int(state["db_port"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1.0):
        return f"mongodb://127.0.0.1:{port}/?directConnection=true"
    return None


def with_backup_database(settings: Settings, work: Work, *, while_serving: bool) -> int:
    """Run `work(client, db)`; `while_serving` False refuses a database a running server uses."""
    from server.cli import on_database
    from server.db import connect

    uri = settings.mongodb_uri
    if not uri:
        uri = running_database(settings.var_dir)
        if uri and not while_serving:
            print(f"error: the server serving {settings.var_dir} uses this database: stop it before restoring",
                  file=sys.stderr)
            return 1

    async def run(uri: str) -> int:
        client = connect(uri, timeout_ms=settings.db_timeout_ms, socket_timeout_ms=None,
                         heartbeat_timeout_ms=HEARTBEAT_TIMEOUT_MS)
        try:
            return await work(client, client[settings.database_name])
        finally:
            await client.close()

    return on_database(settings, uri, run)


def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    from server.backup.create import BackupFailed, create_backup
    from server.backup.snapshot import NoPointInTime
    from server.clock import SystemClock

    async def work(client: Any, db: Any) -> int:
        started = time.monotonic()
        try:
            pace = settings.backup_max_mb_s if args.max_mb_s is None else args.max_mb_s
            manifest = await create_backup(client, db, args.path, clock=SystemClock(),
                                           progress=ProgressLine("backup"), max_mb_s=pace)
        except (BackupFailed, NoPointInTime) as exc:
            print(f"error: backup failed: {exc}", file=sys.stderr)
            return 1
        print(json.dumps({"path": str(args.path), "schema_version": manifest.schema_version,
                          "collections": len(manifest.collections),
                          "documents": sum(c.documents for c in manifest.collections),
                          "photo_files": manifest.photo_files, "bytes": manifest.total_size,
                          "trail_head_seq": manifest.trail.seq, "snapshot_method": manifest.snapshot_method,
                          "seconds": round(time.monotonic() - started, 1)}))
        return 0

    return with_backup_database(settings, work, while_serving=True)


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from server.backup.manifest import BackupRefused
    from server.backup.restore import verify_backup

    async def check() -> int:
        try:
            manifest = await verify_backup(args.path, ProgressLine("verify"))
        except BackupRefused as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(json.dumps({"path": str(args.path), "ok": True, "schema_version": manifest.schema_version,
                          "taken_at": manifest.started_at.isoformat(),
                          "documents": sum(c.documents for c in manifest.collections),
                          "photo_files": manifest.photo_files}))
        return 0

    return asyncio.run(check())


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from server.backup.manifest import BackupRefused
    from server.backup.restore import restore_backup
    from server.clock import SystemClock

    async def work(client: Any, db: Any) -> int:
        try:
            result = await restore_backup(db, args.path, clock=SystemClock(), force=args.force,
                                          progress=ProgressLine("restore"))
        except BackupRefused as exc:
            print(f"error: {exc}; nothing was written", file=sys.stderr)
            return 1
        trail = result.trail
        print(json.dumps({"path": str(args.path), "ok": result.ok, "documents": result.documents,
                          "photo_files": result.manifest.photo_files,
                          "counts_differ": {k: {"backup": a, "restored": b}
                                            for k, (a, b) in result.counts_differ.items()},
                          "trail": {"ok": trail.ok, "checked": trail.checked, "head_seq": trail.head_seq,
                                    "head_matches_backup": result.trail_head_matches},
                          "schema_version": result.manifest.schema_version,
                          "seconds": round(result.seconds, 1)}))
        if not result.ok:
            print("error: the restored database does not match the backup (see above); the server will not "
                  "serve it until a restore finishes", file=sys.stderr)
            return 1
        return 0

    return with_backup_database(settings, work, while_serving=False)
