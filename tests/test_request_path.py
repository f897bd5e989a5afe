"""What every request pays for on the way to its handler, kept small: the current checklist pointer is re-read
by one request at a time, not by every request that finds it stale."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from aiohttp.test_utils import make_mocked_request

from server.checklists import serving
from server.context import Services
from server.http import middleware
from server.http.metrics import Metrics
from server.storage import checklists as store
from tests.conftest import Api


async def test_a_stale_current_version_is_re_read_by_one_request_while_the_others_keep_it(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = 0
    release = asyncio.Event()

    async def slow_read(db: object, key: str) -> int:
        nonlocal reads
        reads += 1
        await release.wait()
        return 7

    monkeypatch.setattr(store, "current_version", slow_read)
    services.shared.current_checklists["branch-service"] = (time.monotonic() - 0.1, 6)
    waiting = [asyncio.create_task(serving.current_version(services, "branch-service")) for _ in range(20)]
    await asyncio.sleep(0.01)
    assert reads == 1
    assert [task.result() for task in waiting if task.done()] == [6] * 19
    release.set()
    assert await asyncio.gather(*waiting) == [7] + [6] * 19  # the first to find it stale read it
    assert await serving.current_version(services, "branch-service") == 7
    assert reads == 1


async def test_a_local_publish_during_a_re_read_is_not_overwritten_by_it(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    release = asyncio.Event()
    versions = iter([6, 8])

    async def read(db: object, key: str) -> int:
        version = next(versions)
        if version == 6:
            await release.wait()  # read before the publish, answered after it
        return version

    monkeypatch.setattr(store, "current_version", read)
    services.shared.current_checklists["branch-service"] = (time.monotonic() - 0.1, 5)
    stale = asyncio.create_task(serving.current_version(services, "branch-service"))
    await asyncio.sleep(0.01)
    serving.forget_current(services, "branch-service")  # as publishing version 8 here does
    release.set()
    assert await stale == 6
    assert await serving.current_version(services, "branch-service") == 8


def test_request_latencies_are_counted_in_cumulative_prometheus_buckets() -> None:
    metrics = Metrics()
    for seconds in (0.001, 0.005, 0.0051, 0.3, 20.0):
        metrics.observe_request("GET", "/api/v1/me", 200, seconds)
    rendered = metrics.render()
    counts = {line.split('le="')[1].split('"')[0]: int(line.rsplit(" ", 1)[1])
              for line in rendered.splitlines() if line.startswith("branch_audit_http_request_duration_seconds_bucket")}
    assert counts == {"0.005": 2, "0.01": 3, "0.025": 3, "0.05": 3, "0.1": 3, "0.25": 3, "0.5": 4, "1.0": 4,
                      "2.5": 4, "5.0": 4, "10.0": 4, "+Inf": 5}
    assert 'branch_audit_http_request_duration_seconds_count{method="GET",route="/api/v1/me"} 5' in rendered


async def test_every_request_is_logged_with_its_route_status_and_id_and_slow_ones_as_warnings(
        api: Api, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    token = await api.token("inspector")
    caplog.clear()  # the login's own request
    with caplog.at_level(logging.INFO, logger="branch_audit.http"):
        resp = await api.call("GET", "/api/v1/checklists/nothing-here", headers={"Authorization": f"Bearer {token}",
                                                                                  "X-Request-ID": "phone-42"})
        assert resp.status == 404 and resp.headers["X-Request-ID"] == "phone-42"
    [record] = [r for r in caplog.records if r.getMessage() == "request"]
    assert record.levelno == logging.INFO
    assert (record.__dict__["route"], record.__dict__["status"]) == ("/api/v1/checklists/{key}", 404)
    caplog.clear()

    monkeypatch.setattr(middleware, "SLOW_REQUEST_S", 0.0)
    with caplog.at_level(logging.WARNING, logger="branch_audit.http"):
        resp = await api.call("GET", "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 200 and len(resp.headers["X-Request-ID"]) == 32
    [slow] = [r for r in caplog.records if r.getMessage() == "request"]
    assert slow.levelno == logging.WARNING and slow.__dict__["route"] == "/api/v1/me"


@pytest.mark.parametrize(("header", "gzip"), [
    ("gzip", True), ("gzip, deflate, br", True), ("deflate, gzip;q=0", False), ("*", True), ("*;q=0", False),
    ("identity", False), ("", False), (None, False), ("br;q=1, " * 40 + "gzip;q=0.5", True),
    ("gzip;q=0, " + "br, " * 60, False),
])
def test_gzip_is_chosen_by_the_accept_encoding_header(header: str | None, gzip: bool) -> None:
    assert serving.accepts_gzip(header) is gzip
    assert serving.accepts_gzip(header) is gzip  # the same answer once the header is remembered


@pytest.mark.parametrize(("if_none_match", "matches"), [
    ('"plain"', True), ('"zipped"', True), ('W/"zipped"', True), ('"old", "zipped"', True), ("*", True),
    ('"old"', False), ('"zipped-but-longer"', False),
])
def test_a_client_holding_either_encodings_tag_gets_304(if_none_match: str, matches: bool) -> None:
    rendering = serving.Rendering(b"{}", b"\x1f\x8b", '"plain"', '"zipped"')
    prepared = serving.Prepared("en", {"en": rendering, "zh-CN": rendering, "es": rendering})
    request = make_mocked_request("GET", "/api/v1/checklists/x",
                                  headers={"If-None-Match": if_none_match, "Accept-Encoding": "gzip"})
    response = serving.respond(request, prepared, None, immutable=False)
    assert response.status == (304 if matches else 200)
    assert response.headers["ETag"] == '"zipped"'
