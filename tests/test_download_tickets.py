"""POST /api/v1/download-tickets: single-use, short-lived download URLs for browsers, authorized as the
ticket's user when used; access tokens never go in URLs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from server.clock import FakeClock
from server.context import Services
from tests.conftest import Api, assert_problem
from tests.test_exports import seed

EXPORT = "/api/v1/exports/audits.csv?status=released&limit=10"


async def _ticket(api: Api, who: str, path: str) -> Any:
    return await api.json("POST", "/api/v1/download-tickets", who, json={"path": path}, expect=201)


async def test_a_ticket_downloads_once_what_the_bearer_would(api: Api, services: Services) -> None:
    await seed(services)
    with_header = await api.call("GET", EXPORT, "compliance")
    ticket = await _ticket(api, "compliance", EXPORT)
    assert ticket["url"].startswith("/api/v1/exports/audits.csv?") and "ticket=" in ticket["url"]
    assert await api.token("compliance") not in ticket["url"]
    first = await api.call("GET", ticket["url"])
    assert first.status == 200 and "attachment" in first.headers["Content-Disposition"]
    assert await first.read() == await with_header.read()
    again = await api.call("GET", ticket["url"])
    assert_problem(again, await again.json(content_type=None), 401)


async def test_a_ticket_works_for_the_audit_report_and_photos(api: Api, services: Services) -> None:
    _, audits = await seed(services)
    path = f"/api/v1/audits/{audits['inspected']['_id']}/report.pdf?lang=en"
    resp = await api.call("GET", (await _ticket(api, "compliance", path))["url"])
    assert resp.status == 200 and resp.content_type == "application/pdf"
    # A photo that does not exist: the ticket is accepted and the route answers as for the bearer.
    missing = await api.call("GET", (await _ticket(api, "compliance", "/api/v1/photos/nope/thumbnail"))["url"])
    assert missing.status == 404


async def test_a_ticket_is_authorized_as_its_user_when_used(api: Api, services: Services) -> None:
    _, audits = await seed(services)
    madrid = f"/api/v1/audits/{audits['madrid']['_id']}/report.pdf"  # not the Lujiazui head's branch
    resp = await api.call("GET", (await _ticket(api, "branch_head", madrid))["url"])
    assert_problem(resp, await resp.json(content_type=None), 404)
    resp = await api.call("GET", (await _ticket(api, "inspector", EXPORT))["url"])
    assert_problem(resp, await resp.json(content_type=None), 403)


async def test_a_ticket_expires_within_seconds(api: Api, clock: FakeClock) -> None:
    ticket = await _ticket(api, "compliance", EXPORT)
    clock.advance(timedelta(seconds=31))
    resp = await api.call("GET", ticket["url"])
    assert_problem(resp, await resp.json(content_type=None), 401)


async def test_a_ticket_is_for_its_own_download_only(api: Api) -> None:
    ticket = await _ticket(api, "compliance", EXPORT)
    value = ticket["url"].split("ticket=")[1]
    for url in (f"/api/v1/exports/audits.csv?status=returned&ticket={value}",
                f"/api/v1/exports/findings.csv?status=released&limit=10&ticket={value}",
                f"/api/v1/me?ticket={value}"):
        resp = await api.call("GET", url)
        assert resp.status == 401, url
    # None of those used it up.
    assert (await api.call("GET", ticket["url"])).status == 200


async def test_a_ticket_of_an_ended_session_is_refused(api: Api) -> None:
    ticket = await _ticket(api, "compliance", EXPORT)
    assert (await api.call("POST", "/api/v1/auth/logout", "compliance")).status == 200
    resp = await api.call("GET", ticket["url"])
    assert_problem(resp, await resp.json(content_type=None), 401)


async def test_only_downloads_take_tickets(api: Api) -> None:
    for path in ("/api/v1/audits", "/api/v1/me", "https://evil.example/api/v1/exports/audits.csv",
                 "/api/v1/exports/audits.csv?ticket=abc", "/api/v1/audits/x/report.pdf/../../users"):
        resp = await api.call("POST", "/api/v1/download-tickets", "compliance", json={"path": path})
        body = await resp.json(content_type=None)
        assert_problem(resp, body, 422)
        assert body["errors"][0]["loc"] == ["body", "path"], path
    resp = await api.call("POST", "/api/v1/download-tickets", json={"path": EXPORT})
    assert resp.status == 401
