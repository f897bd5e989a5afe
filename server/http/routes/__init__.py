"""Every area of the API; each module exposes `router`. The list is explicit imports, so a renamed or
missing module fails at start-up instead of silently dropping an area."""

from __future__ import annotations

from server.http.api import ApiRouter
from server.http.routes import (
    audits,
    auth,
    checklists,
    console,
    events,
    exports,
    findings,
    notifications,
    ops,
    org,
    photos,
    programs,
    rectifications,
    reports,
    trail,
    webhooks,
)

# In the order they appear in /openapi.json.
ROUTE_MODULES = (
    ops,
    auth,
    org,
    checklists,
    programs,
    audits,
    photos,
    findings,
    rectifications,
    notifications,
    reports,
    exports,
    events,
    webhooks,
    trail,
    console,
)


def all_routers() -> list[ApiRouter]:
    return [module.router for module in ROUTE_MODULES]
