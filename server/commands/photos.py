"""`branch-audit photos purge`: the retention policy for photo bytes."""

from __future__ import annotations

import argparse
import json
from typing import Any

from server.settings import Settings


def register(subparsers: Any) -> None:
    photos = subparsers.add_parser("photos", help="photo evidence maintenance")
    commands = photos.add_subparsers(dest="photos_command", required=True)
    purge = commands.add_parser(
        "purge",
        help="remove the bytes of photos of audits released before the cut-off "
        "(hashes and metadata are kept)",
    )
    purge.add_argument(
        "--older-than-days",
        type=int,
        default=None,
        help="released more than this many days ago (default: PHOTO_RETENTION_DAYS)",
    )
    purge.set_defaults(func=cmd_purge)


def cmd_purge(args: argparse.Namespace, settings: Settings) -> int:
    from server.cli import with_database
    from server.photos.retention import purge_photos

    days = args.older_than_days if args.older_than_days is not None else settings.photo_retention_days
    if days < 0:
        print("error: --older-than-days must be zero or more")
        return 2

    async def work(services: Any) -> int:
        result = await purge_photos(services, days)
        print(
            json.dumps(
                {
                    "older_than_days": days,
                    "photos_purged": result.photos,
                    "bytes_freed": result.bytes_freed,
                    "expired_uploads_removed": result.uploads_expired,
                }
            )
        )
        return 0

    return with_database(settings, work)
