"""The outbox, sequencer and dispatcher: ordering, idempotency, failures, several instances, crashes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from pydantic import BaseModel

from schemas.events import event
from server.app import bootstrap
from server.clock import FakeClock
from server.context import ActorInfo, Services, UnitOfWork
from server.db import Doc
from server.handlers.base import EventHandler
from server.jobs.dispatcher import Dispatcher, HandlerRunner, RetryPolicy, drain
from server.jobs.sequencer import sequence_events, sequence_once
from server.settings import Settings
from server.storage import outbox


@event("test.pinged")
class Pinged(BaseModel):
    n: int


@event("test.ponged")
class Ponged(BaseModel):
    n: int


SYSTEM = ActorInfo.system("test")


async def emit_many(services: Services, count: int, *, subjects: int = 50, per_transaction: int = 100) -> None:
    """`count` events over `subjects` subjects, several per transaction."""
    for start in range(0, count, per_transaction):

        async def work(uow: UnitOfWork, start: int = start) -> None:
            for n in range(start, min(count, start + per_transaction)):
                uow.emit(Pinged(n=n), subject_type="thing", subject_id=f"s{n % subjects}")

        await services.transact(SYSTEM, work)


def counting_handler(name: str, types: frozenset[str] = frozenset({"test.pinged"})) -> EventHandler:
    """A handler whose effect is a counter per event, written inside the handler's transaction."""

    async def handle(uow: UnitOfWork, evt: Doc) -> None:
        await uow.db.effects.update_one({"_id": f"{name}:{evt['_id']}"}, {"$inc": {"count": 1}},
                                        upsert=True, session=uow.session)

    return EventHandler(name, types, handle)


async def effect_counts(services: Services, name: str) -> list[int]:
    docs = await services.db.effects.find({"_id": {"$regex": f"^{name}:"}}).to_list()
    return [d["count"] for d in docs]


async def test_sequencer_numbers_events_strictly_increasing_in_emission_order(
        services: Services, clock: FakeClock) -> None:
    for first in (0, 5):

        async def work(uow: UnitOfWork, first: int = first) -> None:
            for n in range(first, first + 5):
                uow.emit(Pinged(n=n), subject_type="thing", subject_id="one")

        await services.transact(SYSTEM, work)
        clock.advance(timedelta(milliseconds=5))
    assert await sequence_once(services) == 10
    docs = await outbox.events_after(services.db, 0, 100)
    assert [d["seq"] for d in docs] == list(range(1, 11))
    assert [d["payload"]["n"] for d in docs] == list(range(10))
    assert await services.db.outbox_pending.count_documents({}) == 0
    assert await sequence_once(services) == 0


async def test_a_handler_runs_once_per_event_even_when_dispatched_twice(services: Services) -> None:
    await emit_many(services, 30)
    handler = counting_handler("counter")
    await drain(services, handlers=[handler])
    # Forget the cursor: the dispatcher re-reads every event, and the markers keep the effects single.
    await services.db.handler_cursors.delete_many({})
    await drain(services, handlers=[handler])
    assert sorted(await effect_counts(services, "counter")) == [1] * 30
    assert await services.db.handled.count_documents({"handler": "counter"}) == 30


async def test_drain_ignores_types_a_handler_did_not_ask_for(services: Services) -> None:
    async def work(uow: UnitOfWork) -> None:
        uow.emit(Pinged(n=1), subject_type="thing", subject_id="a")
        uow.emit(Ponged(n=2), subject_type="thing", subject_id="a")

    await services.transact(SYSTEM, work)
    await drain(services, handlers=[counting_handler("pongs", frozenset({"test.ponged"})),
                                    counting_handler("all", frozenset({"*"}))])
    assert await effect_counts(services, "pongs") == [1]
    assert len(await effect_counts(services, "all")) == 2


async def test_events_emitted_by_a_handler_are_dispatched_in_the_same_drain(services: Services) -> None:
    async def chain(uow: UnitOfWork, evt: Doc) -> None:
        uow.emit(Ponged(n=evt["payload"]["n"]), subject_type="thing", subject_id="chained")

    async def work(uow: UnitOfWork) -> None:
        uow.emit(Pinged(n=7), subject_type="thing", subject_id="a")

    await services.transact(SYSTEM, work)
    await drain(services, handlers=[EventHandler("chain", frozenset({"test.pinged"}), chain),
                                    counting_handler("pongs", frozenset({"test.ponged"}))])
    assert await effect_counts(services, "pongs") == [1]


def flaky_handler(name: str, fail_until: dict[int, datetime]) -> EventHandler:
    """Fails for payload n until the clock reaches fail_until[n]; appends n to a log document on success
    (inside the transaction, so a rolled-back attempt leaves no trace)."""

    async def handle(uow: UnitOfWork, evt: Doc) -> None:
        n = evt["payload"]["n"]
        if n in fail_until and uow.now < fail_until[n]:
            raise RuntimeError(f"boom {n}")
        await uow.db.effects.update_one({"_id": f"log:{name}"}, {"$push": {"handled": n}}, upsert=True,
                                        session=uow.session)

    return EventHandler(name, frozenset({"test.pinged"}), handle)


async def handled_log(services: Services, name: str) -> list[int]:
    doc = await services.db.effects.find_one({"_id": f"log:{name}"})
    return list(doc["handled"]) if doc else []


async def emit_on(services: Services, clock: FakeClock, subject: str, n: int) -> None:
    async def work(uow: UnitOfWork) -> None:
        uow.emit(Pinged(n=n), subject_type="thing", subject_id=subject)

    await services.transact(SYSTEM, work)
    clock.advance(timedelta(milliseconds=1))


async def test_a_failing_event_is_retried_with_backoff_and_holds_back_only_its_subject(
        services: Services, clock: FakeClock) -> None:
    handler = flaky_handler("flaky", {1: clock.now() + timedelta(seconds=25)})
    for subject, n in (("a", 1), ("b", 2), ("a", 3), ("b", 4)):
        await emit_on(services, clock, subject, n)
    runner = HandlerRunner(services, handler, policy=RetryPolicy(max_attempts=5, base_s=10))
    await sequence_once(services)
    await runner.run_once()
    # Subject b went on; subject a waits behind its failed event 1 (event 3 is queued, not handled).
    assert await handled_log(services, "flaky") == [2, 4]
    failure = await services.db.handler_failures.find_one({"status": "retrying"})
    assert failure is not None and failure["attempts"] == 1 and "boom 1" in failure["last_error"]
    assert await services.db.handler_failures.count_documents({"status": "queued"}) == 1

    await runner.run_once()  # not due yet
    clock.advance(timedelta(seconds=10))
    await runner.run_once()  # fails again; the next wait doubles to 20 s
    failure = await services.db.handler_failures.find_one({"status": "retrying"})
    assert failure is not None and failure["attempts"] == 2
    clock.advance(timedelta(seconds=10))
    await runner.run_once()  # not due
    assert await handled_log(services, "flaky") == [2, 4]
    clock.advance(timedelta(seconds=10))
    await runner.run_once()
    assert await handled_log(services, "flaky") == [2, 4, 1, 3]
    assert await services.db.handler_failures.count_documents({}) == 0


async def test_an_event_that_keeps_failing_is_parked_and_releases_its_subject(
        services: Services, clock: FakeClock) -> None:
    handler = flaky_handler("doomed", {1: clock.now() + timedelta(days=1)})
    await emit_on(services, clock, "a", 1)
    await emit_on(services, clock, "a", 2)
    runner = HandlerRunner(services, handler, policy=RetryPolicy(max_attempts=3, base_s=1))
    await sequence_once(services)
    await runner.run_once()
    assert await handled_log(services, "doomed") == []
    for _ in range(3):
        clock.advance(timedelta(seconds=60))
        await runner.run_once()
    parked = await services.db.handler_failures.find_one({"status": "parked"})
    assert parked is not None and parked["attempts"] == 3 and parked["handler"] == "doomed"
    assert await handled_log(services, "doomed") == [2]


async def test_two_dispatchers_on_one_database_apply_each_handler_once_per_event(
        services: Services, settings: Settings, mongo_uri: str, clock: FakeClock) -> None:
    other = bootstrap(settings, mongo_uri, clock=clock)
    assert other.instance_id != services.instance_id
    try:
        await emit_many(services, 1000)
        await sequence_once(services)
        handlers = [counting_handler(f"h{i}") for i in range(3)]
        # A zero lease lets either instance take any handler at any moment: only the markers keep
        # the effects single, which is what a lapsed lease under a slow instance looks like.
        first = Dispatcher(services, handlers, lease_ttl_s=0, batch=100)
        second = Dispatcher(other, handlers, lease_ttl_s=0, batch=100)

        async def run(dispatcher: Dispatcher) -> None:
            moved = 1
            while moved:
                moved = await dispatcher.run_once()

        await asyncio.gather(run(first), run(second), run(first), run(second))
        await drain(services, handlers=handlers)
        for handler in handlers:
            counts = await effect_counts(services, handler.name)
            assert len(counts) == 1000 and set(counts) == {1}, handler.name
            assert await outbox.cursor_of(services.db, handler.name) == 1000
    finally:
        await other.client.close()


async def test_two_dispatcher_jobs_share_handlers_through_leases(
        services: Services, settings: Settings, mongo_uri: str, clock: FakeClock) -> None:
    other = bootstrap(settings, mongo_uri, clock=clock)
    handlers = [counting_handler(f"job{i}") for i in range(4)]
    first = Dispatcher(services, handlers, poll_s=0.02)
    second = Dispatcher(other, handlers, poll_s=0.02)
    try:
        await first.start()
        await second.start()
        # Fewer events than above: this is about leases sharing the work, not volume.
        await emit_many(services, 300)
        await sequence_once(services)
        await wait_for(lambda: all_counted(services, handlers, 300))
    finally:
        await first.stop()
        await second.stop()
        await other.client.close()
    for handler in handlers:
        assert set(await effect_counts(services, handler.name)) == {1}
    owners = await services.db.leases.count_documents({"_id": {"$regex": "^dispatch:job"}})
    assert owners == 0  # stop() released them


async def all_counted(services: Services, handlers: list[EventHandler], expected: int) -> bool:
    for handler in handlers:
        if len(await effect_counts(services, handler.name)) < expected:
            return False
    return True


async def wait_for(condition: Callable[[], Awaitable[bool]], timeout_s: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_a_dispatcher_cancelled_mid_batch_loses_nothing_after_restart(services: Services) -> None:
    await emit_many(services, 300)
    await sequence_once(services)
    reached = asyncio.Event()
    seen = 0

    async def slow(uow: UnitOfWork, evt: Doc) -> None:
        nonlocal seen
        seen += 1
        if seen == 120:
            reached.set()
            await asyncio.sleep(30)  # the task is cancelled here, inside a transaction
        await uow.db.effects.update_one({"_id": f"slow:{evt['_id']}"}, {"$inc": {"count": 1}},
                                        upsert=True, session=uow.session)

    handler = EventHandler("slow", frozenset({"test.pinged"}), slow)
    dispatcher = Dispatcher(services, [handler], poll_s=0.02, batch=100)
    dispatcher.grace_s = 0.3  # the pass sleeps 30 s: stop() waits this long, then cancels it
    await dispatcher.start()
    await asyncio.wait_for(reached.wait(), 30)
    await dispatcher.stop()
    done_before = len(await effect_counts(services, "slow"))
    assert 0 < done_before < 300
    await drain(services, handlers=[handler])
    counts = await effect_counts(services, "slow")
    assert len(counts) == 300 and set(counts) == {1}


async def test_stopping_lets_the_pass_in_flight_commit_then_releases_the_lease(services: Services) -> None:
    await emit_many(services, 20)
    await sequence_once(services)
    inside = asyncio.Event()
    gate = asyncio.Event()

    async def gated(uow: UnitOfWork, evt: Doc) -> None:
        inside.set()
        await gate.wait()
        await uow.db.effects.update_one({"_id": f"gated:{evt['_id']}"}, {"$inc": {"count": 1}},
                                        upsert=True, session=uow.session)

    dispatcher = Dispatcher(services, [EventHandler("gated", frozenset({"test.pinged"}), gated)], poll_s=0.02)
    await dispatcher.start()
    await asyncio.wait_for(inside.wait(), 30)
    stopping = asyncio.create_task(dispatcher.stop())
    await asyncio.sleep(0.1)
    assert not stopping.done()  # waiting for the pass, not cancelling it
    gate.set()
    await asyncio.wait_for(stopping, 10)
    counts = await effect_counts(services, "gated")
    assert len(counts) == 20 and set(counts) == {1}  # the pass finished its batch and committed
    assert await services.db.leases.find_one({"_id": "dispatch:gated"}) is None


async def test_the_sequencer_job_numbers_commits_promptly(services: Services) -> None:
    from server.jobs.sequencer import Sequencer

    job = Sequencer(services, poll_s=60.0)
    await job.start()
    try:
        await asyncio.sleep(0.1)  # its first pass found nothing: it now waits out its 60 s poll
        await emit_many(services, 10)
        # Woken by the commit signal, well before its poll (the margin is for a noisy CI machine).
        await wait_for(lambda: _none_pending(services), timeout_s=15.0)
    finally:
        await job.stop()
    assert await services.db.leases.find_one({"_id": "sequencer"}) is None


async def _none_pending(services: Services) -> bool:
    return await outbox.pending_count(services.db) == 0



async def test_two_sequencers_racing_number_every_event_once_densely_in_subject_order(
        services: Services, settings: Settings, mongo_uri: str, clock: FakeClock) -> None:
    # Both run without the lease, as a leader whose lease lapsed mid-batch would.
    other = bootstrap(settings, mongo_uri, clock=clock)
    try:
        await emit_many(services, 600, subjects=7, per_transaction=20)

        async def run(who: Services) -> None:
            while await sequence_events(who, batch=40):
                pass

        await asyncio.gather(run(services), run(other), run(services), run(other))
        await sequence_once(services)
    finally:
        await other.client.close()
    log = await services.db.event_log.find().sort("seq", 1).to_list()
    assert [p["seq"] for p in log] == list(range(1, 601))  # dense: no gaps, no reuse
    assert len({p["_id"] for p in log}) == 600 and await outbox.pending_count(services.db) == 0
    events = await outbox.events_after(services.db, 0, 600)
    assert [e["payload"]["n"] for e in events] == list(range(600))  # commit order, so subject order too
    state = await services.db.sequence_state.find_one({"_id": "events"})
    assert state is not None and state["last_seq"] == 600


async def test_a_sequencing_refused_by_the_unique_guard_leaves_its_events_pending(services: Services) -> None:
    await emit_many(services, 10)
    # A stale leader already used the next position: this batch must not commit any part of itself.
    await services.db.event_log.insert_one({"_id": "stale", "seq": 1, "type": "test.pinged", "subject": "x"})
    assert await sequence_events(services) == 0
    assert await outbox.pending_count(services.db) == 10
    assert await services.db.event_log.count_documents({}) == 1
    await services.db.event_log.delete_one({"_id": "stale"})
    assert await sequence_events(services) == 10
    assert [e["seq"] for e in await outbox.events_after(services.db, 0, 100)] == list(range(1, 11))


async def test_readers_page_the_log_in_bounded_windows_and_see_the_seq(services: Services) -> None:
    async def work(uow: UnitOfWork) -> None:
        for n in range(30):
            payload = Ponged(n=n) if n % 10 == 9 else Pinged(n=n)
            uow.emit(payload, subject_type="thing", subject_id="w")

    await services.transact(SYSTEM, work)
    await sequence_once(services)
    assert [e["seq"] for e in await outbox.events_after(services.db, 5, 4)] == [6, 7, 8, 9]
    # A rare type is found past several windows; several types are filtered within the windows.
    assert [e["seq"] for e in await outbox.events_after(services.db, 0, 5, ["test.ponged"])] == [10, 20, 30]
    both = await outbox.events_after(services.db, 8, 3, ["test.ponged", "test.pinged"])
    assert [e["seq"] for e in both] == [9, 10, 11]
    assert await outbox.events_after(services.db, 30, 10) == []
    assert await outbox.seq_of(services.db, both[0]["_id"]) == 9


async def test_a_batch_of_events_queues_webhooks_only_for_the_subscriptions_that_want_each(
        services: Services) -> None:
    from server.handlers import webhooks as webhook_handler

    wants = {"pings": ["test.pinged"], "pongs": ["test.ponged"], "all": ["*"], "off": ["*"]}
    for name, types in wants.items():
        await services.db.webhook_subscriptions.insert_one(
            {"_id": name, "active": name != "off", "event_types": types, "url": "http://127.0.0.1:9/"})

    async def work(uow: UnitOfWork) -> None:  # one transaction, so the handler gets them in one batch
        for n in range(3):
            uow.emit(Pinged(n=n), subject_type="thing", subject_id="x")
        uow.emit(Ponged(n=9), subject_type="thing", subject_id="x")

    await services.transact(SYSTEM, work)
    await drain(services, handlers=webhook_handler.HANDLERS)
    queued = await services.db.webhook_deliveries.find({}, {"subscription_id": 1, "event_type": 1}).to_list()
    per_subscription: dict[str, list[str]] = {}
    for delivery in queued:
        per_subscription.setdefault(delivery["subscription_id"], []).append(delivery["event_type"])
    assert {k: sorted(v) for k, v in per_subscription.items()} == {
        "pings": ["test.pinged"] * 3, "pongs": ["test.ponged"], "all": ["test.pinged"] * 3 + ["test.ponged"]}
