"""`branch-audit migrate`: apply the pending migrations now (every start of the server does the same)."""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any

from server.settings import Settings


def register(subparsers: Any) -> None:
    migrate = subparsers.add_parser("migrate", help="bring the database's stored shapes to this release "
                                                    "(once across instances; refuses data newer than this release)")
    migrate.add_argument("--status", action="store_true", help="only show the schema versions; change nothing")
    migrate.set_defaults(func=cmd_migrate)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from server.clock import SystemClock
    from server.commands.backup import with_backup_database
    from server.context import Services
    from server.migrations import latest, migrate, require_understood

    async def work(client: Any, db: Any) -> int:
        # Before any index is created: data of a newer release is refused untouched.
        if args.status:
            version = await require_understood(db)
            print(json.dumps({"schema_version": version, "release_understands": latest()}))
            return 0
        # The migrations need the database, a clock and what the settings define (no secret, no index).
        services = Services(settings=settings, client=client, db=db, clock=SystemClock(),
                            jwt_secret=settings.jwt_secret or "", instance_id=f"cli-{uuid.uuid4().hex[:8]}")
        applied = await migrate(services)
        print(json.dumps({"applied": applied, "schema_version": await require_understood(db)}))
        return 0

    return with_backup_database(settings, work, while_serving=True)
