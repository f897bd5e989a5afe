"""The `branch-audit` command: serve, user create, seed-demo, and operational commands."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import TYPE_CHECKING, Any

from server.settings import Settings

if TYPE_CHECKING:
    from server.embedded import EmbeddedMongo

Command = Callable[[argparse.Namespace, Settings], int]

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="branch-audit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API (starts the embedded database unless MONGODB_URI is set)")
    serve.add_argument("--workers", type=int, default=1, help="server processes sharing the port")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)

    user = sub.add_parser("user", help="manage users").add_subparsers(dest="user_command", required=True)
    create = user.add_parser("create", help="create a user")
    create.add_argument("username")
    create.add_argument("--role", required=True)
    create.add_argument("--display-name", default=None)
    create.add_argument("--branch-code", default=None)
    create.add_argument("--region-code", default=None)
    create.add_argument("--password", default=None, help="read from BRANCH_AUDIT_PASSWORD or prompted if absent")
    create.set_defaults(func=cmd_user_create)

    seed = sub.add_parser("seed-demo", help="seed the demo organisation into an empty database")
    seed.set_defaults(func=cmd_seed_demo)

    # Modules that add subcommands, each with `register(subparsers)`: imported here (explicitly, so a
    # renamed one fails at once) rather than at import time of the CLI.
    from server.commands import backup, checklists, generate, migrate, photos, reports, trail

    for module in (checklists, trail, reports, photos, generate, backup, migrate):
        module.register(sub)

    args = parser.parse_args(argv)
    settings = Settings()
    from server.logging_setup import configure

    configure(settings.log_level, settings.log_format)
    from server.migrations import SchemaError

    try:
        result: int = args.func(args, settings)
    except SchemaError as exc:  # data this release must not serve (newer, or a restore cut short)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return result


# --- database access for one-shot commands -------------------------------------------------------


def start_embedded(settings: Settings) -> EmbeddedMongo | None:
    """The embedded database in VAR_DIR, started; None (with the reason on stderr) when it cannot start."""
    from server.embedded import EmbeddedDatabaseError, EmbeddedMongo

    settings.var_dir.mkdir(parents=True, exist_ok=True)
    embedded = EmbeddedMongo(str(settings.var_dir / "db"), log_path=settings.var_dir / "db.log")
    try:
        embedded.start()
    except EmbeddedDatabaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    return embedded


def on_database(settings: Settings, uri: str | None, run: Callable[[str], Coroutine[Any, Any, int]]) -> int:
    """Run `run(uri)`; without a URI, against the embedded database in VAR_DIR, started for the command and
    stopped after it."""
    embedded = None
    if not uri:
        embedded = start_embedded(settings)
        if embedded is None:
            return 1
        uri = embedded.uri
    try:
        return asyncio.run(run(uri))
    finally:
        if embedded:
            embedded.stop()


def with_database(settings: Settings, work: Callable[[Any], Awaitable[int]]) -> int:
    """Run `work(services)` against MONGODB_URI, or the embedded database started for the command."""
    from server.app import bootstrap
    from server.db import ensure_indexes

    async def run(uri: str) -> int:
        # One-shot commands may run long aggregations (no socket timeout) and long finds (a long heartbeat).
        one_shot = settings.model_copy(update={
            "db_socket_timeout_ms": 0,
            "db_heartbeat_timeout_ms": max(settings.db_heartbeat_timeout_ms, 600_000),
        })
        services = bootstrap(one_shot, uri)
        try:
            await ensure_indexes(services.db)
            return await work(services)
        finally:
            await services.client.close()

    return on_database(settings, settings.mongodb_uri, run)


def cmd_user_create(args: argparse.Namespace, settings: Settings) -> int:
    from pydantic import ValidationError

    from schemas.org import UserCreate
    from server.errors import Problem
    from server.services.users import create_user

    password = args.password or os.environ.get("BRANCH_AUDIT_PASSWORD") or getpass.getpass("Password: ")

    async def work(services: Any) -> int:
        branch = await services.db.branches.find_one({"code": args.branch_code}) if args.branch_code else None
        region = await services.db.regions.find_one({"code": args.region_code}) if args.region_code else None
        if args.branch_code and branch is None:
            print(f"error: no branch with code {args.branch_code}", file=sys.stderr)
            return 2
        if args.region_code and region is None:
            print(f"error: no region with code {args.region_code}", file=sys.stderr)
            return 2
        try:
            body = UserCreate(username=args.username, password=password, role=args.role,
                              display_name=args.display_name or args.username,
                              branch_id=branch["_id"] if branch else None,
                              region_id=(region or {}).get("_id") or (branch or {}).get("region_id"))
            # The same command as POST /users: the branch head is set on the branch, the event emitted.
            doc = await create_user(services, None, body)
        except ValidationError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except Problem as exc:
            print(f"error: {exc.detail}", file=sys.stderr)
            return 2
        print(json.dumps({"id": doc["_id"], "username": body.username, "role": body.role}))
        return 0

    return with_database(settings, work)


def cmd_seed_demo(args: argparse.Namespace, settings: Settings) -> int:
    from server.demo import seed_demo_if_empty

    async def work(services: Any) -> int:
        seeded = await seed_demo_if_empty(services)
        print("seeded" if seeded else "database not empty; nothing seeded")
        return 0

    return with_database(settings, work)


# --- serving -------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    if args.host or args.port:
        settings = settings.model_copy(update={"host": args.host or settings.host, "port": args.port or settings.port})
    from server.auth_state import build_auth_state

    build_auth_state(settings)  # a weak secret or a bad TRUSTED_PROXIES stops start-up here, in one line
    if args.worker:
        return asyncio.run(_serve_process(settings, settings.mongodb_uri or "", reuse_port=True, prepare=False))
    from server.supervisor import DatabaseWatchdog, RunState

    settings.var_dir.mkdir(parents=True, exist_ok=True)
    run_state = RunState(settings.var_dir)
    embedded = None
    watchdog = None
    uri = settings.mongodb_uri
    if not uri:
        embedded = start_embedded(settings)
        if embedded is None:
            return 1
        uri = embedded.uri
        run_state.update(db_pid=embedded.process.pid if embedded.process else None, db_port=embedded.port)
        watchdog = DatabaseWatchdog(embedded, run_state)
        watchdog.start()
    run_state.update(port=settings.port, workers=args.workers)
    try:
        if args.workers <= 1:
            return asyncio.run(_serve_process(settings, uri, reuse_port=False, prepare=True))
        return _supervise_workers(settings, uri, args.workers, run_state)
    except KeyboardInterrupt:
        return 0
    finally:
        if watchdog:
            watchdog.stop()
        if embedded:
            embedded.stop()
        run_state.clear()


async def _serve_process(settings: Settings, uri: str, *, reuse_port: bool, prepare: bool) -> int:
    from aiohttp import web

    from server.app import bootstrap, create_app

    services = bootstrap(settings, uri)
    app = create_app(services, prepare_data=prepare)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=15.0, handle_signals=False,
                           keepalive_timeout=settings.keepalive_timeout_s)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port or None, backlog=1024)
    await site.start()
    print(f"branch-audit serving on http://{settings.host}:{settings.port} (pid {os.getpid()})", file=sys.stderr,
          flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    # Stops accepting, lets in-flight requests finish (up to shutdown_timeout), then closes the database client.
    await runner.cleanup()
    return 0


def _supervise_workers(settings: Settings, uri: str, workers: int, run_state: Any) -> int:
    from server.app import bootstrap, prepare_database
    from server.sessions import release_orphaned_transactions
    from server.supervisor import supervise_workers

    secret = settings.jwt_secret_or_generated()

    async def prepare() -> None:
        services = bootstrap(settings, uri)
        try:
            await prepare_database(services)
        finally:
            await services.client.close()

    asyncio.run(prepare())
    env = {**os.environ, "MONGODB_URI": uri, "JWT_SECRET": secret, "HOST": settings.host,
           "PORT": str(settings.port), "VAR_DIR": str(settings.var_dir)}
    env.pop("JWT_SECRET_FILE", None)  # the secret it held is passed on directly (both set is refused)
    # On the embedded database every client is one of these workers, so a dead worker's open transactions
    # may be aborted wholesale (see release_orphaned_transactions); a shared mongod reaps them after 60 s.
    on_death = None if settings.mongodb_uri else partial(release_orphaned_transactions, uri)
    return supervise_workers(env, workers, run_state, on_worker_death=on_death)


if __name__ == "__main__":
    sys.exit(main())
