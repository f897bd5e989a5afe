"""The in-app inbox, preferences and the Server-Sent Events stream, through a real HTTP client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import ClientResponse, ClientSession
from aiohttp.test_utils import TestServer

from server.app import bootstrap, create_app
from server.clock import FakeClock
from server.context import ActorInfo, Services, UnitOfWork
from server.handlers.notifications import HANDLERS as NOTIFICATION_HANDLERS
from server.notify.channels import InAppChannel, channels_of, deliver, load_recipients
from server.notify.messages import Message, render
from server.notify.stream import notifier_of
from server.settings import Settings
from tests.conftest import Api, assert_problem, reconfigure
from tests.test_rectifications_support import add_after_photo, load_org, release_audit

INBOX = "/api/v1/notifications"


async def notify(services: Services, user_id: str, title: str) -> None:
    """One in-app notification for `user_id`, written the way every feature writes them."""
    recipient = (await load_recipients(services.db, [user_id]))[user_id]
    message = Message(kind="test", title=title, text=f"body of {title}", html=f"<p>{title}</p>")

    async def work(uow: UnitOfWork) -> None:
        await deliver(uow, recipient, message, channels_of(services))

    await services.transact(ActorInfo.system("test"), work)


async def test_inbox_unread_count_and_mark_read(api: Api, services: Services) -> None:
    org = await load_org(services)
    head = org.user("ljz.head")
    for n in range(3):
        await notify(services, head, f"n{n}")
    await notify(services, org.user("compliance"), "someone else's")
    page = await api.json("GET", f"{INBOX}?unread=true", "branch_head", expect=200)
    assert [i["title"] for i in page["items"]] == ["n2", "n1", "n0"]  # newest first
    assert (await api.json("GET", f"{INBOX}/unread-count", "branch_head", expect=200)) == {"count": 3}
    first = page["items"][-1]
    read = await api.json("POST", f"{INBOX}/{first['id']}/read", "branch_head", expect=200)
    assert read["read_at"] is not None
    again = await api.json("POST", f"{INBOX}/{first['id']}/read", "branch_head", expect=200)
    assert again["read_at"] == read["read_at"]
    assert (await api.json("GET", f"{INBOX}/unread-count", "branch_head", expect=200)) == {"count": 2}
    unread = await api.json("GET", f"{INBOX}?unread=true&limit=1", "branch_head", expect=200)
    assert [i["title"] for i in unread["items"]] == ["n2"]
    more = await api.json("GET", f"{INBOX}?unread=true&limit=1&cursor={unread['next_cursor']}", "branch_head",
                          expect=200)
    assert [i["title"] for i in more["items"]] == ["n1"]
    # Someone else's notification: 404, not 403.
    theirs = await services.db.notifications.find_one({"user_id": org.user("compliance")})
    assert theirs is not None
    resp = await api.call("POST", f"{INBOX}/{theirs['_id']}/read", "branch_head")
    assert_problem(resp, await resp.json(content_type=None), 404)


async def test_preferences_choose_the_channels(api: Api, services: Services) -> None:
    org = await load_org(services)
    reconfigure(services, smtp_host="127.0.0.1")  # email channel active (nothing is sent in this test)
    prefs = "/api/v1/me/notification-preferences"
    assert await api.json("GET", prefs, "branch_head", expect=200) == {"in_app": True, "email": True,
                                                                       "webhook": False}
    resp = await api.call("PUT", prefs, "branch_head", json={"in_app": True, "email": True, "sms": True})
    assert_problem(resp, await resp.json(content_type=None), 422)
    await notify(services, org.user("ljz.head"), "with email")
    assert await services.db.email_outbox.count_documents({}) == 1
    await api.json("PUT", prefs, "branch_head", expect=200, json={"in_app": True, "email": False, "webhook": True})
    assert await api.json("GET", prefs, "branch_head", expect=200) == {"in_app": True, "email": False,
                                                                       "webhook": True}
    await notify(services, org.user("ljz.head"), "no email, but a webhook event")
    assert await services.db.email_outbox.count_documents({}) == 1
    events = await services.db.events.find({"type": "notification.created"}).to_list()
    assert [e["payload"]["title"] for e in events] == ["no email, but a webhook event"]
    assert await services.db.notifications.count_documents({"user_id": org.user("ljz.head")}) == 2


class BrokenChannel:
    name = "broken"

    async def deliver(self, uow: UnitOfWork, recipient: Any, message: Message, notification_id: str) -> None:
        raise RuntimeError("channel down")


async def test_a_failing_channel_does_not_block_the_others(services: Services, demo: object) -> None:
    org = await load_org(services)
    services.shared.notify_channels = [BrokenChannel(), InAppChannel(notifier_of(services))]
    await notify(services, org.user("ljz.head"), "still delivered")
    assert await services.db.notifications.count_documents({"title": "still delivered"}) == 1


async def test_admin_alert_when_a_webhook_is_disabled(services: Services, demo: object) -> None:
    org = await load_org(services)
    event = {"_id": "e1", "type": "webhook.subscription_disabled",
             "payload": {"subscription_id": "s1", "url": "https://example.com/hook", "consecutive_failures": 20,
                         "last_error": "HTTP 500"}}

    async def work(uow: UnitOfWork) -> None:
        await NOTIFICATION_HANDLERS[1].handle(uow, event)

    await services.transact(ActorInfo.system("dispatcher"), work)
    alerts = await services.db.notifications.find({"kind": "admin.webhook_disabled"}).to_list()
    assert [a["user_id"] for a in alerts] == [org.user("admin")]
    assert "https://example.com/hook" in alerts[0]["body"]


async def test_submission_notifies_the_inspector(api: Api, services: Services) -> None:
    org = await load_org(services)
    rect = (await release_audit(services, org))[0]
    await add_after_photo(services, rect["_id"])
    await api.json("POST", f"/api/v1/rectifications/{rect['_id']}/submit", "branch_head", expect=200,
                   json={"note": "fixed"})
    event = await services.db.events.find_one({"type": "rectification.submitted"})
    assert event is not None

    async def work(uow: UnitOfWork) -> None:
        await NOTIFICATION_HANDLERS[0].handle(uow, event)

    await services.transact(ActorInfo.system("dispatcher"), work)
    inbox = await api.json("GET", INBOX, "inspector", expect=200)
    assert [i["kind"] for i in inbox["items"]] == ["rectification.submitted"]
    assert inbox["items"][0]["data"]["rectification_id"] == rect["_id"]


# --- Server-Sent Events ---------------------------------------------------------------------------------


async def next_event(resp: ClientResponse, wait_s: float = 5.0) -> dict[str, Any]:
    """Read lines up to the next complete event (comments and retry lines skipped)."""
    fields: dict[str, str] = {}
    while True:
        raw = await asyncio.wait_for(resp.content.readline(), wait_s)
        assert raw, "stream closed"
        line = raw.decode().rstrip("\n")
        if not line:
            if "data" in fields:
                return {**json.loads(fields["data"]), "event_id": int(fields["id"]), "event": fields.get("event")}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(": ")
        fields[name] = value


async def open_stream(api: Api, last_event_id: int | None = None) -> ClientResponse:
    headers = {"Authorization": f"Bearer {await api.token('branch_head')}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    resp = await api.session.get(api.url(f"{INBOX}/stream"), headers=headers)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    return resp


async def test_stream_delivers_live_and_resumes_after_reconnect(
        api: Api, services: Services, settings: Settings, mongo_uri: str, clock: FakeClock) -> None:
    reconfigure(services, sse_poll_s=0.2)
    org = await load_org(services)
    head = org.user("ljz.head")
    await notify(services, head, "before the stream")  # not replayed to a stream opened without Last-Event-ID
    resp = await open_stream(api)
    await notify(services, head, "first")
    first = await next_event(resp)
    assert (first["title"], first["event"]) == ("first", "notification")
    resp.close()

    await notify(services, head, "second")
    other_instance = bootstrap(settings, mongo_uri, clock=clock)
    try:
        await notify(other_instance, head, "third")  # written by another instance: found by the poll
    finally:
        await other_instance.client.close()
    assert first["event_id"] == first["seq"]
    resumed = await open_stream(api, last_event_id=first["event_id"])
    try:
        second, third = await next_event(resumed), await next_event(resumed)
        assert [second["title"], third["title"]] == ["second", "third"]
        assert first["event_id"] < second["event_id"] < third["event_id"]
        await notify(services, head, "fourth")
        fourth = await next_event(resumed)
        assert fourth["title"] == "fourth" and fourth["event_id"] == third["event_id"] + 1
    finally:
        resumed.close()


async def test_stream_sends_heartbeats(api: Api, services: Services) -> None:
    reconfigure(services, sse_poll_s=0.05)
    reconfigure(services, sse_heartbeat_s=0.05)
    resp = await open_stream(api)
    try:
        lines = [await asyncio.wait_for(resp.content.readline(), 5) for _ in range(6)]
        assert b": keepalive\n" in lines
    finally:
        resp.close()


async def test_stopping_the_server_ends_open_streams(services: Services, demo: dict[str, dict[str, str]]) -> None:
    """A stream with its client still connected ends when the server stops, before the database client is
    closed: the handler returns by itself instead of being cancelled mid-query (a leaked socket)."""
    server = TestServer(create_app(services, start_jobs=False, prepare_data=False, close_client=False),
                        host="127.0.0.1")
    await server.start_server()
    async with ClientSession() as session:
        resp = await open_stream(Api(session, str(server.make_url("")).rstrip("/"), demo))
        assert (await asyncio.wait_for(resp.content.readline(), 5)).startswith(b"retry: ")
        assert notifier_of(services).open_streams == 1
        stopping = asyncio.create_task(server.close())
        try:
            rest = await asyncio.wait_for(resp.content.read(), 5)  # to the end of the body
            assert rest.endswith(b"\n\n") and resp.content.at_eof()
        finally:
            resp.close()
            await stopping
    assert notifier_of(services).open_streams == 0


def test_messages_exist_in_every_language() -> None:
    for language, word in (("zh-CN", "整改"), ("en", "rectification"), ("es", "correcci")):
        message = render("rectification.created", language, {"item": "X", "branch": "B", "due": "D",
                                                               "severity": "s"})
        assert word in (message.title + message.text).lower()
        assert message.html.startswith("<!doctype html>") and f'lang="{language}"' in message.html
