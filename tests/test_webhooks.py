"""Webhooks: subscriptions through the API, signed deliveries to a real local receiver, retries,
permanent failures, disabling, and refusal of private targets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from server.clock import FakeClock
from server.context import Services
from server.handlers.webhooks import HANDLERS as WEBHOOK_HANDLERS
from server.jobs.dispatcher import drain
from server.jobs.webhook_delivery import DeliveryPolicy, deliver_due
from server.storage import outbox
from server.webhooks import retry
from server.webhooks.targets import TargetRefused, address_allowed, check_target
from tests.conftest import Api, reconfigure


@dataclass
class Receiver:
    """A real HTTP endpoint answering with scripted statuses (then 200), recording what it got."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="ok", headers=self.headers)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    found.url = str(server.make_url("/hook"))
    yield found
    await server.close()


def verify_standard_webhook(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """An independent Standard Webhooks verifier, as a receiver would write it."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body.decode()}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [part.split(",", 1)[1] for part in headers["webhook-signature"].split() if part.startswith("v1,")]
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)


async def subscribe(api: Api, url: str, types: list[str] | None = None) -> dict[str, Any]:
    created = await api.json("POST", "/api/v1/webhooks", who="admin", expect=201,
                             json={"url": url, "event_types": types or ["region.created"]})
    assert created["secret"].startswith("whsec_") and created["active"] is True
    return dict(created)


async def create_region(api: Api, code: str) -> dict[str, Any]:
    return dict(await api.json("POST", "/api/v1/regions", who="admin", expect=201,
                               json={"code": code, "name": f"Region {code}"}))


async def deliveries(api: Api, webhook_id: str) -> list[dict[str, Any]]:
    page = await api.json("GET", f"/api/v1/webhooks/{webhook_id}/deliveries", who="admin", expect=200)
    return list(page["items"])


async def test_a_real_receiver_gets_signed_deliveries_that_verify(
        api: Api, services: Services, receiver: Receiver, clock: FakeClock) -> None:
    hook = await subscribe(api, receiver.url)
    region = await create_region(api, "NORTH")
    await drain(services, handlers=WEBHOOK_HANDLERS)
    assert await deliver_due(services) == 1
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    assert verify_standard_webhook(hook["secret"], {k.lower(): v for k, v in headers.items()}, body)
    assert not verify_standard_webhook(hook["secret"], {k.lower(): v for k, v in headers.items()}, body + b" ")
    assert headers["webhook-timestamp"] == str(int(clock.now().timestamp()))
    event = await services.db.events.find_one({"type": "region.created", "payload.region_id": region["id"]})
    assert event is not None and headers["webhook-id"] == event["_id"]
    sent = json.loads(body)
    assert sent["type"] == "region.created" and sent["payload"]["region_id"] == region["id"]
    assert sent["id"] == event["_id"] and sent["seq"] == await outbox.seq_of(services.db, event["_id"])
    [delivery] = await deliveries(api, hook["id"])
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1
    assert delivery["log"][0]["status_code"] == 200 and delivery["log"][0]["duration_ms"] >= 0
    # Nothing is sent twice, and re-dispatching the event queues no second delivery.
    assert await deliver_due(services) == 0
    await services.db.handler_cursors.delete_many({})
    await drain(services, handlers=WEBHOOK_HANDLERS)
    assert await deliver_due(services) == 0
    assert len(receiver.received) == 1


async def test_a_receiver_answering_500_twice_gets_the_delivery_on_the_third_attempt(
        api: Api, services: Services, receiver: Receiver, clock: FakeClock) -> None:
    hook = await subscribe(api, receiver.url)
    receiver.statuses = [500, 500]
    await create_region(api, "SOUTH")
    await drain(services, handlers=WEBHOOK_HANDLERS)
    policy = DeliveryPolicy(backoff=retry.Backoff(base_s=10, jitter=0.25))
    assert await deliver_due(services, policy=policy) == 1
    [delivery] = await deliveries(api, hook["id"])
    assert delivery["status"] == "pending" and delivery["last_status_code"] == 500
    assert await deliver_due(services, policy=policy) == 0  # backing off: not due yet
    clock.advance(timedelta(seconds=10))
    assert await deliver_due(services, policy=policy) == 1
    clock.advance(timedelta(seconds=20))
    assert await deliver_due(services, policy=policy) == 1
    [delivery] = await deliveries(api, hook["id"])
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    assert [a["status_code"] for a in delivery["log"]] == [500, 500, 200]
    assert len(receiver.received) == 3
    ids = {headers["webhook-id"] for headers, _ in receiver.received}
    assert len(ids) == 1  # the same message id on every retry, so receivers can deduplicate


async def test_429_retry_after_is_honoured_and_a_4xx_fails_for_good(
        api: Api, services: Services, receiver: Receiver, clock: FakeClock) -> None:
    hook = await subscribe(api, receiver.url)
    receiver.statuses = [429, 410]
    receiver.headers = {"Retry-After": "600"}
    await create_region(api, "EAST2")
    await drain(services, handlers=WEBHOOK_HANDLERS)
    await deliver_due(services)
    doc = await services.db.webhook_deliveries.find_one({"subscription_id": hook["id"]})
    assert doc is not None and doc["next_attempt_at"] >= clock.now() + timedelta(seconds=600)
    clock.advance(timedelta(seconds=599))
    assert await deliver_due(services) == 0
    clock.advance(timedelta(seconds=1))
    assert await deliver_due(services) == 1
    [delivery] = await deliveries(api, hook["id"])
    assert delivery["status"] == "failed" and delivery["last_status_code"] == 410
    clock.advance(timedelta(days=1))
    assert await deliver_due(services) == 0


async def test_a_connection_error_is_retried(api: Api, services: Services, clock: FakeClock) -> None:
    from server.embedded import free_port

    hook = await subscribe(api, f"http://127.0.0.1:{free_port()}/nobody-listens")
    await create_region(api, "WEST")
    await drain(services, handlers=WEBHOOK_HANDLERS)
    await deliver_due(services)
    [delivery] = await deliveries(api, hook["id"])
    assert delivery["status"] == "pending" and delivery["last_status_code"] is None
    assert delivery["log"][0]["error"]


async def test_a_subscription_that_keeps_failing_is_disabled_and_admins_get_an_event(
        api: Api, services: Services, receiver: Receiver) -> None:
    hook = await subscribe(api, receiver.url)
    receiver.statuses = [400, 400, 400]
    for code in ("R1", "R2"):
        await create_region(api, code)
    await drain(services, handlers=WEBHOOK_HANDLERS)
    await deliver_due(services, policy=DeliveryPolicy(disable_after=2))
    found = await api.json("GET", f"/api/v1/webhooks/{hook['id']}", who="admin", expect=200)
    assert found["active"] is False and found["consecutive_failures"] == 2
    assert "400" in found["disabled_reason"]
    disabled = await services.db.events.find_one({"type": "webhook.subscription_disabled"})
    assert disabled is not None and disabled["payload"]["subscription_id"] == hook["id"]
    assert await services.db.trail.find_one({"action": "webhook.disable", "entity_id": hook["id"]})
    # Disabled: later events queue nothing for it.
    await create_region(api, "R3")
    await drain(services, handlers=WEBHOOK_HANDLERS)
    assert await services.db.webhook_deliveries.count_documents({"subscription_id": hook["id"]}) == 2


async def test_subscriptions_to_private_addresses_are_refused_unless_configured(
        api: Api, services: Services, receiver: Receiver) -> None:
    reconfigure(services, webhook_allow_private=False)
    for url in (receiver.url, "http://10.1.2.3/hook", "http://169.254.169.254/latest/meta-data",
                "http://[::1]:8080/x", "http://localhost/hook", "ftp://example.com/x"):
        problem = await api.json("POST", "/api/v1/webhooks", who="admin", expect=422,
                                 json={"url": url, "event_types": ["*"]})
        assert problem["errors"][0]["loc"] == ["body", "url"], url


async def test_a_target_that_turned_private_is_refused_at_delivery(
        api: Api, services: Services, receiver: Receiver) -> None:
    hook = await subscribe(api, receiver.url)
    await create_region(api, "TURN")
    await drain(services, handlers=WEBHOOK_HANDLERS)
    reconfigure(services, webhook_allow_private=False)
    await deliver_due(services)
    assert receiver.received == []
    [delivery] = await deliveries(api, hook["id"])
    assert delivery["status"] == "failed" and "refused" in delivery["last_error"]


async def test_webhook_management_is_for_admins_and_delete_cancels_pending(
        api: Api, services: Services, receiver: Receiver) -> None:
    await api.json("GET", "/api/v1/webhooks", who="branch_head", expect=403)
    await api.json("POST", "/api/v1/webhooks", who="compliance", expect=403,
                   json={"url": receiver.url, "event_types": ["*"]})
    await api.json("POST", "/api/v1/webhooks", who="admin", expect=422,
                   json={"url": receiver.url, "event_types": ["*"], "secret": "not-a-secret"})
    own_secret = "whsec_" + base64.b64encode(bytes(range(32))).decode()
    hook = await api.json("POST", "/api/v1/webhooks", who="admin", expect=201,
                          json={"url": receiver.url, "event_types": ["*"], "secret": own_secret})
    assert hook["secret"] == own_secret
    listed = await api.json("GET", "/api/v1/webhooks", who="admin", expect=200)
    assert [h["id"] for h in listed["items"]] == [hook["id"]] and "secret" not in listed["items"][0]
    await create_region(api, "DEL")
    await drain(services, handlers=WEBHOOK_HANDLERS)
    await api.call("DELETE", f"/api/v1/webhooks/{hook['id']}", who="admin")
    await api.json("GET", f"/api/v1/webhooks/{hook['id']}", who="admin", expect=404)
    [delivery] = await deliveries(api, hook["id"])
    assert delivery["status"] == "cancelled"
    assert await deliver_due(services) == 0 and receiver.received == []
    await api.json("DELETE", f"/api/v1/webhooks/{hook['id']}", who="admin", expect=404)


async def test_check_target_refuses_non_public_addresses() -> None:
    import ipaddress

    for text in ("127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "224.0.0.1",
                 "0.0.0.0", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "100.64.0.1", "240.0.0.1"):
        assert not address_allowed(ipaddress.ip_address(text)), text
    for text in ("93.184.215.14", "2606:4700:4700::1111", "8.8.8.8"):
        assert address_allowed(ipaddress.ip_address(text)), text
    with pytest.raises(TargetRefused):
        await check_target("http://192.168.0.10/x", allow_private=False)
    await check_target("http://192.168.0.10/x", allow_private=True)
    with pytest.raises(TargetRefused):
        await check_target("http://user:pw@93.184.215.14/x", allow_private=False)


def test_backoff_grows_exponentially_with_bounded_jitter_and_honours_retry_after() -> None:
    backoff = retry.Backoff(base_s=10, cap_s=3600, jitter=0.25)
    rng = random.Random(7)
    for attempt, full in ((1, 10), (2, 20), (3, 40), (10, 3600)):
        delay = backoff.delay(attempt, rng).total_seconds()
        assert full * 0.75 <= delay <= full, (attempt, delay)
    assert backoff.delay(1, rng, timedelta(seconds=300)) == timedelta(seconds=300)
    assert [retry.classify(c) for c in (None, 500, 503, 429, 200, 204, 400, 410, 301)] == [
        "retry", "retry", "retry", "retry", "delivered", "delivered", "failed", "failed", "failed"]
