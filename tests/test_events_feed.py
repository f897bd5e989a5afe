"""GET /api/v1/events (the integration feed) and the admin view of handler failures."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

from schemas.events import event
from server.clock import FakeClock
from server.context import ActorInfo, Services, UnitOfWork
from server.db import Doc
from server.handlers.base import EventHandler
from server.jobs.dispatcher import HandlerRunner, RetryPolicy, drain
from server.jobs.sequencer import sequence_once
from tests.conftest import Api


@event("test.fed")
class Fed(BaseModel):
    n: int


@event("test.other")
class Other(BaseModel):
    n: int


async def emit(services: Services, clock: FakeClock, payload: BaseModel, subject: str = "x") -> None:
    async def work(uow: UnitOfWork) -> None:
        uow.emit(payload, subject_type="thing", subject_id=subject)

    await services.transact(ActorInfo.system("test"), work)
    clock.advance(timedelta(milliseconds=1))


async def integration_login(api: Api) -> None:
    await api.json("POST", "/api/v1/users", who="admin", expect=201,
                   json={"username": "erp.bridge", "password": "a long enough passphrase 42", "role": "integration",
                         "display_name": "ERP bridge"})
    await api.login("erp.bridge", "a long enough passphrase 42")


async def test_the_feed_pages_by_a_stable_cursor_and_hides_unsequenced_events(
        api: Api, services: Services, clock: FakeClock) -> None:
    await sequence_once(services)  # the demo seed's own events
    base = (await api.json("GET", "/api/v1/events?limit=200", who="admin", expect=200))["next_cursor"]
    for n in range(5):
        await emit(services, clock, Fed(n=n))
    # Committed but not sequenced yet: not in the feed (a reader could otherwise skip it for good).
    page = await api.json("GET", f"/api/v1/events?after={base}", who="admin", expect=200)
    assert page["items"] == [] and page["next_cursor"] == base
    await sequence_once(services)
    seen: list[int] = []
    cursor = base
    for _ in range(3):
        page = await api.json("GET", f"/api/v1/events?after={cursor}&limit=2&type=test.fed", who="admin",
                              expect=200)
        seen += [item["payload"]["n"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert seen == [0, 1, 2, 3, 4]
    item = (await api.json("GET", f"/api/v1/events?after={base}&limit=1", who="admin", expect=200))["items"][0]
    assert set(item) >= {"id", "type", "schema_version", "occurred_at", "actor", "subject", "payload", "seq"}
    assert item["seq"] == int(base) + 1
    # A later poll from the last cursor sees only what came after.
    await emit(services, clock, Fed(n=5))
    await emit(services, clock, Other(n=6))
    await sequence_once(services)
    page = await api.json("GET", f"/api/v1/events?after={cursor}", who="admin", expect=200)
    assert [(i["type"], i["payload"]["n"]) for i in page["items"]] == [("test.fed", 5), ("test.other", 6)]
    page = await api.json("GET", f"/api/v1/events?after={cursor}&type=test.other", who="admin", expect=200)
    assert [i["payload"]["n"] for i in page["items"]] == [6]


async def test_the_feed_is_for_admins_and_integrations_only(api: Api, services: Services) -> None:
    await integration_login(api)
    await api.json("GET", "/api/v1/events", who="erp.bridge", expect=200)
    for role in ("branch_head", "compliance", "inspector"):
        await api.json("GET", "/api/v1/events", who=role, expect=403)
    await api.json("GET", "/api/v1/events", expect=401)
    await api.json("GET", "/api/v1/events?after=abc", who="admin", expect=422)


async def test_admins_see_parked_failures_and_can_retry_them(
        api: Api, services: Services, clock: FakeClock) -> None:
    broken = {"on": True}

    async def fragile(uow: UnitOfWork, evt: Doc) -> None:
        if broken["on"]:
            raise ValueError("downstream table missing")
        await uow.db.effects.insert_one({"_id": evt["_id"]}, session=uow.session)

    handler = EventHandler("fragile", frozenset({"test.fed"}), fragile)
    await emit(services, clock, Fed(n=1))
    await sequence_once(services)
    runner = HandlerRunner(services, handler, policy=RetryPolicy(max_attempts=2, base_s=1))
    await runner.run_once()
    clock.advance(timedelta(seconds=5))
    await runner.run_once()
    page = await api.json("GET", "/api/v1/events/failures?status=parked", who="admin", expect=200)
    [failure] = page["items"]
    assert failure["handler"] == "fragile" and failure["attempts"] == 2
    assert "downstream table missing" in failure["last_error"]
    await api.json("GET", "/api/v1/events/failures", who="compliance", expect=403)
    await api.json("POST", f"/api/v1/events/failures/{failure['id']}/retry", who="branch_head", expect=403)

    broken["on"] = False
    retried = await api.json("POST", f"/api/v1/events/failures/{failure['id']}/retry", who="admin", expect=200)
    assert retried["status"] == "retrying" and retried["attempts"] == 0
    await api.json("POST", f"/api/v1/events/failures/{failure['id']}/retry", who="admin", expect=404)
    await drain(services, handlers=[handler])
    assert await services.db.effects.count_documents({}) == 1
    assert (await api.json("GET", "/api/v1/events/failures", who="admin", expect=200))["items"] == []
    assert await services.db.trail.find_one({"action": "event_failure.retry"})
