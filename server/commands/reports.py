"""`branch-audit reports rebuild`: recompute the scorecard/trend aggregates from the audits."""

from __future__ import annotations

import argparse
import json
from typing import Any

from server.settings import Settings


def register(subparsers: Any) -> None:
    reports = subparsers.add_parser("reports", help="report aggregates").add_subparsers(
        dest="reports_command", required=True
    )
    rebuild = reports.add_parser("rebuild", help="recompute every aggregate bucket from the released audits")
    rebuild.add_argument(
        "--check",
        action="store_true",
        help="only compare the stored buckets with a recomputation; exit 1 if they differ",
    )
    rebuild.set_defaults(func=cmd_rebuild)


def cmd_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from server.cli import with_database
    from server.storage import reports

    async def work(services: Any) -> int:
        if args.check:
            fresh = await reports.recompute(services.db)
            stored = await reports.stored_totals(services.db)
            differing = sorted(k for k in fresh.totals.keys() | stored.keys() if fresh.totals.get(k) != stored.get(k))
            print(json.dumps({"buckets": len(fresh.totals), "differing": len(differing), "examples": differing[:10]}))
            return 1 if differing else 0
        print(json.dumps(await reports.rebuild(services.db, services.clock.now())))
        return 0

    return with_database(settings, work)
