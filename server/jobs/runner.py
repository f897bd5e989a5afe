"""Starts and stops the background jobs (event dispatcher, scheduler, ...) with the application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from aiohttp import web

from server.context import Services

log = logging.getLogger("branch_audit.jobs")


class BackgroundJob(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def build_jobs(services: Services) -> list[BackgroundJob]:
    """Every module exposing `jobs(services) -> list[BackgroundJob]`, started in this order, stopped in
    reverse. Imported here, not named as strings, so a renamed job fails at start-up."""
    from server.jobs import (
        backups,
        dispatcher,
        email_delivery,
        scheduler,
        sequencer,
        wakeups,
        webhook_delivery,
    )

    modules = (wakeups, sequencer, dispatcher, webhook_delivery, email_delivery, scheduler, backups)
    jobs: list[BackgroundJob] = []
    for module in modules:
        jobs.extend(module.jobs(services))
    return jobs


def background_jobs(services: Services) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        jobs = build_jobs(services)
        for job in jobs:
            await job.start()
            log.info("job started", extra={"job": job.name})
        yield
        for job in reversed(jobs):
            await job.stop()

    return lifecycle
