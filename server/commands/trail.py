"""`branch-audit trail verify`: walk the hash chain and name the first broken link."""

from __future__ import annotations

import argparse
import json
from typing import Any

from server.settings import Settings
from server.storage.trail import VerifyResult, verify_chain


def register(subparsers: Any) -> None:
    trail = subparsers.add_parser("trail", help="the tamper-evident trail").add_subparsers(
        dest="trail_command", required=True)
    verify = trail.add_parser("verify", help="recompute the hash chain; exit 1 at the first broken link")
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.set_defaults(func=cmd_verify)


def report(result: VerifyResult) -> str:
    if result.broken is None:
        text = f"trail intact: {result.checked} sealed entries verified (head seq {result.head_seq})"
    else:
        b = result.broken
        text = (f"trail BROKEN at seq {b.seq} (entry {b.entry_id or 'absent'}): {b.problem}: {b.detail}; "
                f"{result.checked} entries before it verified")
    if result.unsealed:
        text += f"; {result.unsealed} entries not sealed yet"
    return text


def as_json(result: VerifyResult) -> str:
    b = result.broken
    broken = None if b is None else {"seq": b.seq, "entry_id": b.entry_id, "problem": b.problem,
                                     "detail": b.detail}
    return json.dumps({"ok": result.ok, "checked": result.checked, "head_seq": result.head_seq,
                       "unsealed": result.unsealed, "broken": broken})


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from server.cli import with_database

    async def work(services: Any) -> int:
        result = await verify_chain(services.db)
        print(as_json(result) if args.json else report(result))
        return 0 if result.ok else 1

    return with_database(settings, work)
