"""Health, readiness, metrics, the OpenAPI document and its self-hosted docs page."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from pydantic import BaseModel

from server.db import ping
from server.http.api import ApiRouter, json_response
from server.keys import SERVICES

router = ApiRouter("operations")


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str


@router.get("/healthz", summary="The process is alive", response=Health, roles=None)
async def healthz(request: web.Request) -> web.Response:
    return json_response(Health(status="ok"))


@router.get("/readyz", summary="Ready to serve: the database answers", response=Readiness, roles=None,
            extra_responses={503: "Database unreachable"})
async def readyz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    if await ping(services.client):
        return json_response(Readiness(status="ready", database="ok"))
    return json_response(Readiness(status="unavailable", database="unreachable"), status=503,
                         headers={"Retry-After": "5"})


@router.get("/metrics", summary="Prometheus metrics", roles=None, response_content_type="text/plain")
async def metrics(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    return web.Response(text=services.metrics.render(), content_type="text/plain", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


@router.get("/openapi.json", summary="This API's OpenAPI 3.1 description", roles=None)
async def openapi(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    return web.Response(body=services.openapi_bytes, content_type="application/json",
                        headers={"Cache-Control": "no-cache"})


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>branch-audit API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body></html>
"""
DOCS_INIT = "window.ui = SwaggerUIBundle({url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true});\n"


@router.get("/docs", summary="Interactive API documentation (assets served locally)", roles=None,
            response_content_type="text/html")
async def docs(request: web.Request) -> web.Response:
    return web.Response(text=DOCS_PAGE, content_type="text/html")


@router.get("/docs/init.js", summary="Docs page bootstrap script", roles=None,
            response_content_type="application/javascript")
async def docs_init(request: web.Request) -> web.Response:
    return web.Response(text=DOCS_INIT, content_type="application/javascript")


def docs_assets_dir() -> Path:
    import swagger_ui_bundle  # type: ignore[import-untyped]

    return Path(swagger_ui_bundle.swagger_ui_path)
