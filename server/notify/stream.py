"""Wakes this process's notification streams when an inbox changes; other instances' writes are picked up
by the streams' fallback poll, so a notification is never missed, only sometimes a poll interval late."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from aiohttp import web

from server.context import Services

# The commit happens after the channel writes, in the caller's transaction: wake again shortly after so
# the stream reads the committed notification, and leave the rest to the fallback poll.
WAKE_AGAIN_S = (0.05, 0.3)


class Notifier:
    """Per-user wake-up events for the SSE streams served by this process."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._ending: set[asyncio.Event] = set()

    def subscribe(self, user_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self._waiters.setdefault(user_id, set()).add(event)
        return event

    def unsubscribe(self, user_id: str, event: asyncio.Event) -> None:
        waiters = self._waiters.get(user_id)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[user_id]
        self._ending.discard(event)

    def ended(self, event: asyncio.Event) -> bool:
        """Whether the server is stopping and the stream waiting on `event` should finish."""
        return event in self._ending

    def end_all(self) -> None:
        """Ask every open stream to finish now. A stream only notices a closed client on its next write, so
        without this a stopping server cancels it wherever it is, mid-query, and leaks its database socket."""
        for waiters in self._waiters.values():
            self._ending.update(waiters)
            for event in waiters:
                event.set()

    @property
    def open_streams(self) -> int:
        return sum(len(waiters) for waiters in self._waiters.values())

    def wake(self, user_id: str) -> None:
        for event in self._waiters.get(user_id, ()):
            event.set()

    def wake_soon(self, user_id: str) -> None:
        if user_id not in self._waiters:
            return
        self.wake(user_id)
        with contextlib.suppress(RuntimeError):  # no running loop: nobody to wake
            loop = asyncio.get_running_loop()
            for delay in WAKE_AGAIN_S:
                loop.call_later(delay, self.wake, user_id)


def notifier_of(services: Services) -> Notifier:
    if services.shared.notifier is None:
        services.shared.notifier = Notifier()
    return services.shared.notifier


def end_streams_on_shutdown(services: Services) -> Callable[[web.Application], Awaitable[None]]:
    """An on_shutdown hook: runs before the server waits for its handlers, so each open stream returns
    cleanly (its client sees the end and reconnects elsewhere) before the database client is closed."""

    async def end_streams(app: web.Application) -> None:
        notifier_of(services).end_all()

    return end_streams
