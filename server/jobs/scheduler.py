"""The reminder job: APScheduler 3 in the application's event loop runs the reminder sweep every few
seconds and the digest cron; what they send is decided by server.services.reminders."""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from server.context import Services
from server.services.reminders import send_digests, send_due_reminders

log = logging.getLogger("branch_audit.reminders")

# Branches live in several time zones: each head's digest goes once their local digest time has passed.
DIGEST_CRON_MINUTES = "*/15"


class ReminderScheduler:
    """APScheduler 3 in the application's event loop: the sweep every few seconds, the digest cron."""

    name = "reminder-scheduler"

    def __init__(self, services: Services) -> None:
        self.services = services
        self.scheduler: AsyncIOScheduler | None = None

    async def start(self) -> None:
        scheduler = AsyncIOScheduler(timezone=UTC)
        common: dict[str, Any] = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        # First sweep at once: what fell due while the server was down goes out on start.
        scheduler.add_job(
            self.sweep,
            IntervalTrigger(seconds=self.services.settings.reminder_sweep_interval_s),
            id="reminder-sweep",
            next_run_time=self.services.clock.now(),
            **common,
        )
        scheduler.add_job(
            self.digest, CronTrigger(minute=DIGEST_CRON_MINUTES, timezone=UTC), id="daily-digest", **common
        )
        scheduler.start()
        self.scheduler = scheduler

    async def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None

    async def sweep(self) -> None:
        try:
            await send_due_reminders(self.services, self.services.clock.now())
        except Exception:
            log.exception("reminder sweep failed")

    async def digest(self) -> None:
        try:
            await send_digests(self.services, self.services.clock.now())
        except Exception:
            log.exception("digest failed")


def jobs(services: Services) -> list[ReminderScheduler]:
    return [ReminderScheduler(services)]
