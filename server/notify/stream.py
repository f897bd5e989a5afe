"""Wakes this process's notification streams when an inbox changes; other instances' writes are picked up
by the streams' fallback poll, so a notification is never missed, only sometimes a poll interval late."""

from __future__ import annotations

import asyncio
import contextlib

from server.context import Services

# The commit happens after the channel writes, in the caller's transaction: wake again shortly after so
# the stream reads the committed notification, and leave the rest to the fallback poll.
WAKE_AGAIN_S = (0.05, 0.3)


class Notifier:
    """Per-user wake-up events for the SSE streams served by this process."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

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
