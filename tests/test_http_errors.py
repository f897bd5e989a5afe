"""Every error is application/problem+json: routing, methods, bodies, validation, internals."""

from __future__ import annotations

import io
import json

from tests.conftest import Api, assert_problem


async def test_unknown_route_and_wrong_method(api: Api) -> None:
    r = await api.call("GET", "/api/v1/no-such-thing")
    assert_problem(r, await r.json(content_type=None), 404)
    r = await api.call("DELETE", "/api/v1/me", "admin")
    assert_problem(r, await r.json(content_type=None), 405)
    assert "GET" in r.headers["Allow"]


async def test_malformed_json_bodies(api: Api) -> None:
    cases = [b"{", b"", b"[1,2", b'{"username": NaN}', "\ud800".encode("utf-8", "surrogatepass"),
             b'{"username": "a\\u0000", "password": "b"}', b"[" * 100_000 + b"]" * 100_000]
    for raw in cases:
        r = await api.call("POST", "/api/v1/auth/login", data=raw, headers={"Content-Type": "application/json"})
        body = await r.json(content_type=None)
        assert 400 <= r.status < 500, (raw[:20], r.status)
        assert_problem(r, body, r.status)


async def test_http_level_errors_are_problems_too(api: Api) -> None:
    # A request line beyond aiohttp's limit is refused by its parser, before routing and middleware.
    r = await api.call("GET", "/api/v1/trail?entity_id=" + "x" * 10_000, "admin")
    body = await r.json(content_type=None)
    assert_problem(r, body, r.status)
    assert 400 <= r.status < 500


async def test_wrong_types_name_the_field(api: Api) -> None:
    r = await api.call("POST", "/api/v1/regions", "admin", json={"code": 12, "name": ["x"]})
    body = await r.json(content_type=None)
    assert_problem(r, body, 422)
    assert {tuple(e["loc"]) for e in body["errors"]} == {("body", "code"), ("body", "name")}


async def test_body_too_large_is_413(api: Api) -> None:
    huge = io.BytesIO(json.dumps({"code": "X", "name": "n" * (2 * 1024 * 1024)}).encode())
    r = await api.call("POST", "/api/v1/regions", "admin", data=huge, headers={"Content-Type": "application/json"})
    assert_problem(r, await r.json(content_type=None), 413)


async def test_wrong_content_type_is_415(api: Api) -> None:
    r = await api.call("POST", "/api/v1/regions", "admin", data="code=X", headers={"Content-Type": "text/plain"})
    assert_problem(r, await r.json(content_type=None), 415)


async def test_request_id_is_echoed_or_generated(api: Api) -> None:
    r = await api.call("GET", "/healthz", headers={"X-Request-ID": "phone-abc-123"})
    assert r.headers["X-Request-ID"] == "phone-abc-123"
    r = await api.call("GET", "/healthz", headers={"X-Request-ID": "bad id with spaces\u00e9"})
    assert r.headers["X-Request-ID"] != "bad id with spaces"
    assert len(r.headers["X-Request-ID"]) == 32


async def test_internal_errors_hide_internals(api: Api) -> None:
    from aiohttp import web

    from server.http.api import ApiRouter

    # A handler that crashes, mounted on a throwaway app sharing the middleware.
    router = ApiRouter("crash")

    @router.get("/crash", summary="crash", roles=None)
    async def crash(request: web.Request) -> web.Response:
        raise RuntimeError("secret internal detail: mongodb://user:pw@host")

    from aiohttp.test_utils import TestClient, TestServer

    from server.http.api import mount
    from server.http.metrics import Metrics
    from server.http.middleware import build_middlewares

    app = web.Application(middlewares=build_middlewares(Metrics()))
    mount(app, [router])
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/crash")
        body = await r.json(content_type=None)
        assert r.status == 500 and r.content_type == "application/problem+json"
        assert "secret" not in json.dumps(body)
        assert body["request_id"] in body["detail"]


async def test_openapi_describes_every_route(api: Api) -> None:
    spec = await api.json("GET", "/openapi.json", expect=200)
    from server.http.openapi import _PARAM
    from server.http.routes import all_routers

    for router in all_routers():
        for op in router.operations:
            path = _PARAM.sub(lambda m: "{" + m.group(1) + "}", op.path)
            assert path in spec["paths"], path
            assert op.method.lower() in spec["paths"][path], (op.method, path)
    login = spec["paths"]["/api/v1/auth/login"]["post"]
    assert "requestBody" in login and "422" in login["responses"]
    r = await api.call("GET", "/docs")
    assert r.status == 200 and "swagger-ui-bundle.js" in await r.text()
    r = await api.call("GET", "/docs/assets/swagger-ui-bundle.js")
    assert r.status == 200


async def test_metrics_expose_requests_by_route(api: Api) -> None:
    await api.call("GET", "/healthz")
    text = await (await api.call("GET", "/metrics")).text()
    assert 'branch_audit_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert "branch_audit_database_errors_total" in text
