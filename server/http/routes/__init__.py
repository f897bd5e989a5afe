"""Every area of the API; each module exposes `router`."""

from __future__ import annotations

import importlib

from server.http.api import ApiRouter

# Listed in the order they appear in /openapi.json.
ROUTE_MODULES = [
    "server.http.routes.ops",
    "server.http.routes.auth",
    "server.http.routes.org",
    "server.http.routes.checklists",
    "server.http.routes.programs",
    "server.http.routes.audits",
    "server.http.routes.photos",
    "server.http.routes.findings",
    "server.http.routes.rectifications",
    "server.http.routes.notifications",
    "server.http.routes.reports",
    "server.http.routes.exports",
    "server.http.routes.events",
    "server.http.routes.webhooks",
    "server.http.routes.trail",
]


def all_routers() -> list[ApiRouter]:
    routers = []
    for name in ROUTE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # an area not built yet
                continue
            raise
        routers.append(module.router)
    return routers
