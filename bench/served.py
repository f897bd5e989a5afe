"""The built web app served by the real server in this process, on a throwaway embedded database with the
demo organisation: what the browser benchmarks (bench.web, bench.web_console) measure against."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bench.common import ROOT
from server.app import bootstrap, create_app
from server.context import Services
from server.db import ensure_indexes
from server.demo import seed_demo
from server.embedded import EmbeddedMongo, free_port
from server.http.webapp import app_dir
from server.settings import Settings


@dataclass
class Served:
    services: Services
    base: str  # http://127.0.0.1:port
    demo: dict[str, dict[str, str]]  # the demo's credentials by role


@asynccontextmanager
async def served_demo(name: str, before_serving: Callable[[Services], Awaitable[Any]] | None = None,
                      **settings: Any) -> AsyncIterator[Served]:
    """Serve the demo organisation (and whatever `before_serving` adds) with Argon2 at its cheapest, so the
    logins measure the app and not the password hash; `settings` override the defaults."""
    if not (app_dir() / "index.html").is_file():
        raise SystemExit("web app not built: run make web")
    mongo = EmbeddedMongo(":memory:")
    mongo.start()
    defaults: dict[str, Any] = {
        "mongodb_uri": mongo.uri, "database_name": f"bench_{name}_{uuid.uuid4().hex[:6]}", "seed_demo": False,
        "publish_checklists": False, "run_jobs": False, "log_level": "WARNING", "var_dir": ROOT / "var" / "bench",
        "jwt_secret": f"bench-{name}-" + "x" * 32, "argon2_time_cost": 1, "argon2_memory_kib": 1024,
    }
    services = bootstrap(Settings(**{**defaults, **settings}), mongo.uri)
    runner: web.AppRunner | None = None
    try:
        await ensure_indexes(services.db)
        demo = await seed_demo(services)
        if before_serving is not None:
            await before_serving(services)
        runner = web.AppRunner(create_app(services, start_jobs=False, prepare_data=False, close_client=False))
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield Served(services, f"http://127.0.0.1:{port}", demo)
    finally:
        if runner:
            await runner.cleanup()
        await services.client.close()
        mongo.stop()
