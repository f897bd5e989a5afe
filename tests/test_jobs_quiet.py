"""Background jobs at rest and across instances: few database commands when nothing happens (no lease
write per poll), and another instance's commit reaches its handler within a second (change stream)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from pymongo import AsyncMongoClient, monitoring

from server.app import bootstrap
from server.clock import FakeClock
from server.context import Services
from server.jobs.dispatcher import Dispatcher
from server.jobs.loop import PollingLoop
from server.jobs.runner import BackgroundJob
from server.jobs.sequencer import Sequencer, sequence_pending
from server.jobs.wakeups import Wakeups, sequenced_elsewhere
from server.settings import Settings
from server.storage import trail
from tests.test_events_dispatcher import SYSTEM, Pinged, counting_handler, effect_counts

WRITES = {"insert", "update", "delete", "findAndModify"}


class Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_jobs_at_rest_send_a_few_reads_and_no_writes(services: Services, mongo_uri: str) -> None:
    commands = Commands()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True, event_listeners=[commands])
    counted = dataclasses.replace(services, client=client, db=client[services.settings.database_name])
    jobs: list[BackgroundJob] = [Wakeups(counted), Sequencer(counted), Dispatcher(counted, [counting_handler("quiet")])]
    try:
        for job in jobs:
            await job.start()
        await asyncio.sleep(1.0)  # first passes: leases taken, nothing pending
        commands.names.clear()
        await asyncio.sleep(3.0)
        at_rest = list(commands.names)
    finally:
        for job in reversed(jobs):
            await job.stop()
        await client.close()
    # Before: every job renewed its lease and read its cursor every 0.1 s (about 100 commands here). Now: the
    # change stream's idle getMore once a second, and in the window at most one slow-poll pass of the
    # sequencer and of the dispatcher (two reads each).
    assert not WRITES & set(at_rest), at_rest
    assert at_rest.count("getMore") <= 4, at_rest
    assert len([name for name in at_rest if name != "getMore"]) <= 4, at_rest


async def test_the_change_stream_leaves_out_this_instances_own_commits(services: Services) -> None:
    # The same instance, but a wake-up of its own: only the change stream can set it.
    watcher = dataclasses.replace(services, outbox_signal=asyncio.Event())
    other = dataclasses.replace(services, instance_id="another-instance", outbox_signal=asyncio.Event())
    wakeups = Wakeups(watcher)

    async def work(uow: Any) -> None:
        uow.emit(Pinged(n=1), subject_type="thing", subject_id="x")
        uow.record("thing.ping", "thing", "x")

    try:
        await wakeups.start()
        await asyncio.sleep(0.5)  # the stream is open
        await services.transact(SYSTEM, work)
        await asyncio.sleep(0.5)
        assert not watcher.outbox_signal.is_set()  # its own commit already woke it in-process
        await other.transact(SYSTEM, work)
        started = time.perf_counter()
        while not watcher.outbox_signal.is_set():
            assert time.perf_counter() - started < 2.0, "another instance's commit did not wake it"
            await asyncio.sleep(0.01)
    finally:
        await wakeups.stop()


def test_a_sequence_state_change_wakes_the_dispatcher_unless_this_instance_wrote_it() -> None:
    moved_to_7 = {"operationType": "update", "updateDescription": {"updatedFields": {"last_seq": 7}}}
    assert not sequenced_elsewhere(moved_to_7, own_last=7)  # its own commit: signalled in-process
    assert not sequenced_elsewhere(moved_to_7, own_last=9)  # an older change: already dispatched past it
    assert sequenced_elsewhere(moved_to_7, own_last=5)
    assert sequenced_elsewhere(moved_to_7, own_last=None)  # this instance does not sequence, or forgot
    assert sequenced_elsewhere({"operationType": "insert", "fullDocument": {"last_seq": 3}}, own_last=2)
    assert sequenced_elsewhere({"operationType": "replace"}, own_last=9)  # no seq to compare: wake


async def test_another_instances_commit_reaches_the_handler_within_a_second(
        services: Services, settings: Settings, mongo_uri: str, clock: FakeClock) -> None:
    other = bootstrap(settings, mongo_uri, clock=clock)
    handler = counting_handler("across")
    # Long polls: only the change stream can wake the other instance's jobs in time.
    jobs: list[BackgroundJob] = [
        Wakeups(other), Sequencer(other, poll_s=60.0), Dispatcher(other, [handler], poll_s=60.0)]
    delays = []
    try:
        for job in jobs:
            await job.start()
        await asyncio.sleep(0.5)  # the stream is open and the first passes are done
        for n in range(10):

            async def work(uow: Any, n: int = n) -> None:
                uow.emit(Pinged(n=n), subject_type="thing", subject_id="x")

            started = time.perf_counter()
            await services.transact(SYSTEM, work)
            while len(await effect_counts(services, "across")) <= n:
                assert time.perf_counter() - started < 10, "the other instance was not woken"
                await asyncio.sleep(0.01)
            delays.append(time.perf_counter() - started)
    finally:
        for job in reversed(jobs):
            await job.stop()
        await other.client.close()
    assert sorted(delays)[-1] < 1.0, delays  # the slowest of ten: p95 under a second


async def _commit(services: Services, first: int) -> None:
    async def work(uow: Any) -> None:
        for n in range(first, first + 5):
            uow.emit(Pinged(n=n), subject_type="thing", subject_id="x")
        uow.record("thing.ping", "thing", "x", {"first": first})

    await services.transact(SYSTEM, work)


async def test_a_sequencer_whose_remembered_state_went_stale_aborts_and_reads_it_afresh(
        services: Services, settings: Settings, mongo_uri: str, clock: FakeClock) -> None:
    other = bootstrap(settings, mongo_uri, clock=clock)
    try:
        await _commit(services, 0)
        assert await sequence_pending(services) == (6, False)  # remembers last seq 5 and the trail head
        await _commit(services, 5)
        assert await sequence_pending(other) == (6, False)  # another instance moved both on
        await _commit(services, 10)
        assert await sequence_pending(services) == (0, True)  # its memory is stale: refused, nothing written
        assert await sequence_pending(services) == (6, False)  # read afresh
    finally:
        await other.client.close()
    log = await services.db.event_log.find().sort("seq", 1).to_list()
    assert [p["seq"] for p in log] == list(range(1, 16))
    chain = await trail.verify_chain(services.db)
    assert chain.ok and chain.head_seq == 3 and chain.unsealed == 0


class CountedPasses(PollingLoop):
    name = "counted"

    def __init__(self, wake: asyncio.Event) -> None:
        super().__init__(poll_s=60.0, wake=wake, gather_s=0.1, gather_max_s=0.3)
        self.passes: list[float] = []
        self.second_pass = asyncio.Event()

    async def one_pass(self) -> int:
        self.passes.append(time.perf_counter())
        if len(self.passes) == 2:
            self.second_pass.set()
        return 0


async def test_commits_close_together_share_one_pass_and_a_steady_stream_waits_at_most_the_cap() -> None:
    wake = asyncio.Event()
    job = CountedPasses(wake)
    await job.start()
    try:
        await asyncio.sleep(0.05)
        assert len(job.passes) == 1  # the first pass, at start
        for _ in range(3):  # one phone's commits, close together
            wake.set()
            await asyncio.sleep(0.02)
        await asyncio.wait_for(job.second_pass.wait(), 3)
        await asyncio.sleep(0.2)
        assert len(job.passes) == 2  # the three shared one pass
        before, wakes = len(job.passes), 0
        started = time.perf_counter()
        while time.perf_counter() - started < 1.5:  # a commit every 30 ms: never quiet for 0.1 s
            wake.set()
            wakes += 1
            await asyncio.sleep(0.03)
        # About one pass per 0.3 s cap (5 here): never one per commit, nor none at all. The bounds are
        # wide because a loaded machine stretches every sleep; the shape is what is tested.
        during = len(job.passes) - before
        assert 2 <= during <= 8 and during < wakes / 4, (during, wakes, job.passes)
    finally:
        await job.stop()
