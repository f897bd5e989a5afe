"""Hostile inputs: the JSON corpus in tests/hostile/json, oversized bodies and slow clients are each answered
with a 4xx (or a closed connection for a request that never completes) in bounded time, nothing stored is
changed, and the server keeps serving others."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

import pytest

from server.context import Services
from tests.conftest import Api, reconfigure

CORPUS = sorted((Path(__file__).parent / "hostile" / "json").glob("*.json"))
# JSON endpoints reachable with the roles the corpus is sent as: (method, path, role).
TARGETS = [
    ("POST", "/api/v1/auth/login", None),
    ("POST", "/api/v1/auth/refresh", None),
    ("POST", "/api/v1/regions", "admin"),
    ("POST", "/api/v1/branches", "admin"),
    ("POST", "/api/v1/users", "admin"),
]


def test_corpus_is_present() -> None:
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("sample", CORPUS, ids=lambda p: p.stem)
async def test_corpus_sample_gets_a_4xx_problem(api: Api, services: Services, sample: Path) -> None:
    raw = await asyncio.to_thread(sample.read_bytes)
    before = {name: await services.db[name].count_documents({}) for name in ("regions", "branches", "users")}
    for method, path, role in TARGETS:
        started = time.perf_counter()
        r = await api.call(method, path, role, data=io.BytesIO(raw), headers={"Content-Type": "application/json"})
        elapsed = time.perf_counter() - started
        body = await r.json(content_type=None)
        assert 400 <= r.status < 500, (path, r.status, body)
        assert r.content_type == "application/problem+json"
        assert elapsed < 5, (path, elapsed)
    after = {name: await services.db[name].count_documents({}) for name in ("regions", "branches", "users")}
    assert before == after
    assert (await api.call("GET", "/healthz")).status == 200


async def test_ten_megabyte_string_is_413(api: Api) -> None:
    body = io.BytesIO(b'{"code": "X", "name": "' + b"n" * (10 * 1024 * 1024) + b'"}')
    r = await api.call("POST", "/api/v1/regions", "admin", data=body, headers={"Content-Type": "application/json"})
    assert r.status == 413


async def _open(api: Api) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = api.base.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def test_trickled_body_gets_408_and_others_are_served(api: Api, services: Services) -> None:
    reconfigure(services, body_read_timeout_s=0.5)
    token = await api.token("admin")
    reader, writer = await _open(api)
    writer.write(b"POST /api/v1/regions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Authorization: Bearer " + token.encode() + b"\r\nContent-Length: 1000\r\n\r\n{\"co")
    await writer.drain()
    # Another client is served while the slow one trickles.
    assert (await api.call("GET", "/healthz")).status == 200
    started = time.perf_counter()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n"), timeout=5)
    assert b" 408 " in head
    assert time.perf_counter() - started < 5
    writer.close()
    await writer.wait_closed()


async def test_trickled_headers_are_cut_off(services: Services, api: Api) -> None:
    from aiohttp.test_utils import TestServer

    from server.app import create_app

    app = create_app(services, start_jobs=False, prepare_data=False, close_client=False)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(keepalive_timeout=0.5)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        await writer.drain()
        started = time.perf_counter()
        for _ in range(20):
            await asyncio.sleep(0.1)
            if writer.is_closing() or reader.at_eof():
                break
            try:
                writer.write(b"a")
                await writer.drain()
            except ConnectionError:
                break
        data = await asyncio.wait_for(reader.read(), timeout=5)
        assert time.perf_counter() - started < 5
        assert data == b"" or b" 4" in data.split(b"\r\n", 1)[0]
        writer.close()
        await writer.wait_closed()
    finally:
        await server.close()
