"""More server instances on one database, for tests of what every instance must see at once."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp.test_utils import TestServer

from server.app import bootstrap, create_app
from server.clock import Clock
from server.context import Services
from server.settings import Settings


@contextlib.asynccontextmanager
async def serving(services: Services) -> AsyncIterator[str]:
    """The application of `services` on a real port; yields its base URL."""
    app = create_app(services, start_jobs=False, prepare_data=False, close_client=False)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@contextlib.asynccontextmanager
async def another_instance(settings: Settings, mongo_uri: str, clock: Clock) -> AsyncIterator[tuple[Services, str]]:
    """A second instance: its own process state (caches, instance id), the same database."""
    services = bootstrap(settings.model_copy(), mongo_uri, clock=clock)
    try:
        async with serving(services) as base:
            yield services, base
    finally:
        await services.client.close()
