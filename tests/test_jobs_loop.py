"""How a background job's loop pauses, wakes and stops (no database)."""

from __future__ import annotations

import asyncio

from server.jobs.loop import PollingLoop


class Recorder(PollingLoop):
    name = "recorder"

    def __init__(self, *, pass_s: float, poll_s: float = 60.0, grace_s: float = 1.0,
                 wake: asyncio.Event | None = None) -> None:
        super().__init__(poll_s=poll_s, wake=wake, grace_s=grace_s)
        self.pass_s = pass_s
        self.passes = 0
        self.finished = 0
        self.cancelled = 0
        self.stopped_after: list[int] = []

    async def one_pass(self) -> int:
        self.passes += 1
        try:
            await asyncio.sleep(self.pass_s)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.finished += 1
        return 0

    async def after_stop(self) -> None:
        self.stopped_after.append(self.finished)


async def test_stop_waits_for_the_pass_in_flight_then_runs_after_stop() -> None:
    job = Recorder(pass_s=0.2)
    await job.start()
    await asyncio.sleep(0.05)
    await job.stop()
    assert (job.passes, job.finished, job.cancelled) == (1, 1, 0)
    assert job.stopped_after == [1]  # after_stop ran once the pass had ended


async def test_a_pass_that_outlasts_the_grace_is_cancelled() -> None:
    job = Recorder(pass_s=60.0, grace_s=0.1)
    await job.start()
    await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await job.stop()
    assert loop.time() - started < 1.0
    assert (job.finished, job.cancelled) == (0, 1)
    assert job.stopped_after == [0]


async def test_an_idle_loop_stops_at_once_and_wakes_on_its_signal() -> None:
    wake = asyncio.Event()
    job = Recorder(pass_s=0.0, poll_s=60.0, wake=wake)
    await job.start()
    await asyncio.sleep(0.05)
    assert job.passes == 1  # paused for its 60 s poll
    wake.set()
    await asyncio.sleep(0.05)
    assert job.passes == 2  # woken early by the signal
    loop = asyncio.get_running_loop()
    started = loop.time()
    await job.stop()
    assert loop.time() - started < 0.5  # the pause ends on stop, not after the poll
    assert job.cancelled == 0


async def test_a_failing_pass_does_not_end_the_loop() -> None:
    class Failing(Recorder):
        async def one_pass(self) -> int:
            self.passes += 1
            raise RuntimeError("boom")

    job = Failing(pass_s=0.0, poll_s=0.01)
    await job.start()
    await asyncio.sleep(0.1)
    await job.stop()
    assert job.passes > 2
