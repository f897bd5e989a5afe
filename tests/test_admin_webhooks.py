"""PATCH /webhooks/{id}, POST /webhooks/{id}/rotate-secret and /deliveries/{id}/redeliver: a receiver goes
down for maintenance, its secret changes, and what it missed is sent again."""

from __future__ import annotations

import uuid
from datetime import timedelta

from server.clock import FakeClock
from server.context import Services
from server.handlers.webhooks import HANDLERS as WEBHOOK_HANDLERS
from server.jobs.dispatcher import drain
from server.jobs.webhook_delivery import deliver_due
from server.webhooks import signing
from tests.conftest import Api, assert_problem
from tests.test_admin_users import event_of, trail_of
from tests.test_webhooks import Receiver, create_region, deliveries, receiver, subscribe, verify_standard_webhook

__all__ = ["receiver"]  # the fixture, used by name


def lowered(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


async def test_pause_resume_and_change_event_types(api: Api, services: Services, receiver: Receiver) -> None:
    hook = await subscribe(api, receiver.url)
    path = f"/api/v1/webhooks/{hook['id']}"
    await create_region(api, "NORTH")
    await drain(services, handlers=WEBHOOK_HANDLERS)
    paused = await api.json("PATCH", path, "admin", expect=200, json={"active": False})
    assert paused["active"] is False and paused["disabled_reason"] == "paused by an admin"
    [pending] = await deliveries(api, hook["id"])
    assert pending["status"] == "cancelled"
    assert await deliver_due(services) == 0 and receiver.received == []
    event = await event_of(services, "webhook.updated", hook["id"])
    assert event["payload"]["active"] is False
    await trail_of(services, "webhook.update", hook["id"])

    resumed = await api.json("PATCH", path, "admin", expect=200,
                             json={"active": True, "event_types": ["branch.created", "region.created"]})
    assert resumed["active"] is True and resumed["disabled_at"] is None and resumed["consecutive_failures"] == 0
    assert resumed["event_types"] == ["branch.created", "region.created"]
    body = await api.json("PATCH", path, "admin", expect=422, json={"event_types": ["not an event"]})
    assert body["errors"][0]["loc"][:2] == ["body", "event_types"]
    await api.json("PATCH", path, "admin", expect=422, json={})
    await api.json("PATCH", f"/api/v1/webhooks/{uuid.uuid4()}", "admin", expect=404, json={"active": False})
    r = await api.call("PATCH", path, "compliance", json={"active": False})
    assert_problem(r, await r.json(content_type=None), 403)

    # What it missed while paused is sent again on request.
    redelivered = await api.json("POST", f"{path}/deliveries/{pending['id']}/redeliver", "admin", expect=200)
    assert redelivered["status"] == "pending" and redelivered["attempts"] == 0
    assert await deliver_due(services) == 1 and len(receiver.received) == 1
    event = await event_of(services, "webhook.delivery_redelivered", hook["id"])
    assert event["payload"]["delivery_id"] == pending["id"]
    await trail_of(services, "webhook.redeliver", hook["id"])
    [delivered] = await deliveries(api, hook["id"])
    assert delivered["status"] == "delivered" and len(delivered["log"]) == 1


async def test_redeliver_refuses_what_cannot_be_sent_again(api: Api, services: Services, receiver: Receiver) -> None:
    hook = await subscribe(api, receiver.url)
    await create_region(api, "EAST2")
    await drain(services, handlers=WEBHOOK_HANDLERS)
    [pending] = await deliveries(api, hook["id"])
    base = f"/api/v1/webhooks/{hook['id']}/deliveries"
    await api.json("POST", f"{base}/{pending['id']}/redeliver", "admin", expect=409)
    await api.json("POST", f"{base}/{uuid.uuid4()}/redeliver", "admin", expect=404)
    other = await subscribe(api, receiver.url)
    await api.json("POST", f"/api/v1/webhooks/{other['id']}/deliveries/{pending['id']}/redeliver", "admin",
                   expect=404)
    r = await api.call("POST", f"{base}/{pending['id']}/redeliver")
    assert r.status == 401


async def test_a_rotated_secret_overlaps_the_old_one_for_a_day(
        api: Api, services: Services, receiver: Receiver, clock: FakeClock) -> None:
    hook = await subscribe(api, receiver.url)
    path = f"/api/v1/webhooks/{hook['id']}/rotate-secret"
    r = await api.call("POST", path, "compliance")
    assert r.status == 403
    rotated = await api.json("POST", path, "admin", expect=200)
    new_secret = rotated["secret"]
    assert new_secret != hook["secret"] and new_secret.startswith("whsec_")
    overlap_ends = (clock.now() + signing.ROTATION_OVERLAP).date().isoformat()
    assert rotated["previous_secret_valid_until"].startswith(overlap_ends)
    listed = await api.json("GET", f"/api/v1/webhooks/{hook['id']}", "admin", expect=200)
    assert "secret" not in listed
    await event_of(services, "webhook.secret_rotated", hook["id"])
    await trail_of(services, "webhook.rotate_secret", hook["id"])

    await create_region(api, "WEST")
    await drain(services, handlers=WEBHOOK_HANDLERS)
    assert await deliver_due(services) == 1
    headers, body = receiver.received[-1]
    assert len(lowered(headers)["webhook-signature"].split()) == 2
    for secret in (new_secret, hook["secret"]):
        assert verify_standard_webhook(secret, lowered(headers), body)

    clock.advance(signing.ROTATION_OVERLAP + timedelta(seconds=1))
    await api.login("admin")  # the day-old access token has expired
    await create_region(api, "WEST2")
    await drain(services, handlers=WEBHOOK_HANDLERS)
    assert await deliver_due(services) == 1
    headers, body = receiver.received[-1]
    assert verify_standard_webhook(new_secret, lowered(headers), body)
    assert not verify_standard_webhook(hook["secret"], lowered(headers), body)
