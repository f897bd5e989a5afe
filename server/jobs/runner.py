"""Starts and stops the background jobs (event dispatcher, scheduler, ...) with the application."""

from __future__ import annotations

import importlib
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


# Modules exposing `jobs(services) -> list[BackgroundJob]`, started in this order, stopped in reverse.
JOB_MODULES = [
    "server.jobs.wakeups",
    "server.jobs.sequencer",
    "server.jobs.dispatcher",
    "server.jobs.webhook_delivery",
    "server.jobs.email_delivery",
    "server.jobs.scheduler",
    "server.jobs.backups",
]


def build_jobs(services: Services) -> list[BackgroundJob]:
    jobs: list[BackgroundJob] = []
    for name in JOB_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
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
