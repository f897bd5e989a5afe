"""The application factory and the wiring of dependencies (bootstrap)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from importlib import metadata

from aiohttp import web

from server.auth_state import build_auth_state, start_auth, stop_auth
from server.clock import Clock, SystemClock
from server.context import Services
from server.db import Client, connect, ensure_indexes
from server.http.api import mount
from server.http.middleware import build_middlewares
from server.http.openapi import spec_bytes
from server.http.protocol import use_problem_json_for_protocol_errors
from server.http.routes import all_routers
from server.http.routes.ops import docs_assets_dir
from server.http.webapp import router as web_app_router
from server.jobs.runner import background_jobs
from server.keys import SERVICES
from server.migrations import migrate, require_understood
from server.notify.stream import end_streams_on_shutdown
from server.photos.tus import add_tus_resumable
from server.security import Passwords
from server.settings import Settings

log = logging.getLogger("branch_audit")


def bootstrap(settings: Settings, uri: str, *, clock: Clock | None = None) -> Services:
    """Build the dependencies once; tests pass a fake clock or settings."""
    client = connect(uri, timeout_ms=settings.db_timeout_ms, socket_timeout_ms=settings.db_socket_timeout_ms or None,
                     heartbeat_timeout_ms=settings.db_heartbeat_timeout_ms or None)
    services = Services(
        settings=settings,
        client=client,
        db=client[settings.database_name],
        clock=clock or SystemClock(),
        jwt_secret=settings.jwt_secret_or_generated(),
        passwords=Passwords(settings.argon2_time_cost, settings.argon2_memory_kib),
    )
    services.shared.mongodb_uri = uri
    services.shared.auth = build_auth_state(settings)
    return services


def for_background_jobs(services: Services) -> tuple[Services, Client]:
    """The same services on a client without the per-request socket timeout: a sequencer or sweep batch may
    legitimately take longer on a loaded database, and failing it would only make it retry the same work."""
    client = connect(services.shared.mongodb_uri, timeout_ms=services.settings.db_timeout_ms,
                     socket_timeout_ms=None)
    return replace(services, client=client, db=client[services.settings.database_name], bounded=False), client


def create_app(services: Services, *, start_jobs: bool | None = None, prepare_data: bool = True,
               close_client: bool = True) -> web.Application:
    """The aiohttp application; `start_jobs` runs the dispatcher and scheduler in this process."""
    use_problem_json_for_protocol_errors()
    app = web.Application(
        middlewares=build_middlewares(services.metrics),
        client_max_size=services.settings.max_json_bytes,
    )
    app[SERVICES] = services
    operations = mount(app, [*all_routers(), web_app_router])
    app.router.add_static("/docs/assets", docs_assets_dir(), append_version=False)
    try:
        version = metadata.version("branch-audit")
    except metadata.PackageNotFoundError:
        version = "0.0.0"
    services.openapi_bytes = spec_bytes(operations, version)
    services.shared.operations = operations

    async def database(app: web.Application) -> AsyncIterator[None]:
        if prepare_data:
            await prepare_database(services)
        else:
            # A worker behind a supervisor that prepared the data: it only refuses what it must not serve.
            await require_understood(services.db)
        yield
        await services.reaper.close()
        services.close()
        if close_client:
            await services.client.close()

    app.cleanup_ctx.append(database)

    async def authentication(app: web.Application) -> AsyncIterator[None]:
        await start_auth(services)
        yield
        await stop_auth(services)

    app.cleanup_ctx.append(authentication)
    app.on_response_prepare.append(add_tus_resumable)
    app.on_shutdown.append(end_streams_on_shutdown(services))
    if services.settings.run_jobs if start_jobs is None else start_jobs:
        job_services, job_client = for_background_jobs(services)

        async def close_job_client(app: web.Application) -> AsyncIterator[None]:
            yield
            await job_client.close()

        app.cleanup_ctx.append(close_job_client)
        app.cleanup_ctx.append(background_jobs(job_services))
    return app


async def prepare_database(services: Services) -> None:
    """Migrations (once across instances; refuses data newer than this release), indexes, shipped checklists
    and (on an empty database) the demo organisation."""
    await migrate(services)
    await ensure_indexes(services.db)
    settings = services.settings
    if settings.publish_checklists:
        from server.checklists.publishing import publish_shipped

        await publish_shipped(services)
    if settings.should_seed_demo():
        from server.demo import seed_demo_if_empty

        await seed_demo_if_empty(services)
