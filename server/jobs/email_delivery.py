"""Sends the queued emails (email_outbox) over SMTP with retries and backoff; a failure never touches the
other channels, which committed with the notification."""

from __future__ import annotations

import logging
from datetime import timedelta

from server.context import Services
from server.jobs.loop import PollingLoop
from server.notify.email import build_email, send_email
from server.storage import notifications as store

log = logging.getLogger("branch_audit.email")

LEASE = timedelta(minutes=2)  # a claimed email whose sender died is sent again after this
RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)
POLL_S = 5.0
BATCH = 100


def retry_delay(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, ... capped at an hour."""
    delay: timedelta = RETRY_BASE * (2 ** max(0, attempts - 1))
    return min(RETRY_CAP, delay)


async def send_due_emails(services: Services, *, limit: int = BATCH) -> int:
    """Send up to `limit` due emails; returns how many were accepted by the SMTP server."""
    settings = services.settings
    if not settings.smtp_host:
        return 0
    sent = 0
    for _ in range(limit):
        now = services.clock.now()
        email = await store.claim_email(services.db, now, LEASE)
        if email is None:
            break
        message = build_email(
            settings,
            to=email["to"],
            subject=email["subject"],
            text=email["text"],
            html=email["html"],
            language=email.get("language", "en"),
        )
        try:
            await send_email(settings, message)
        except Exception as exc:  # any SMTP, TLS or network failure: retry later
            attempts = int(email.get("attempts", 1))
            retry_at = None if attempts >= settings.email_max_attempts else now + retry_delay(attempts)
            log.warning(
                "email not sent",
                extra={
                    "email_id": email["_id"],
                    "attempts": attempts,
                    "error": f"{type(exc).__name__}: {exc}",
                },
            )
            await store.email_failed(services.db, email["_id"], f"{type(exc).__name__}: {exc}", retry_at)
            continue
        await store.email_sent(services.db, email["_id"], services.clock.now())
        sent += 1
    return sent


class EmailDeliveryWorker(PollingLoop):
    name = "email-delivery"

    def __init__(self, services: Services) -> None:
        super().__init__(poll_s=POLL_S)
        self.services = services

    async def one_pass(self) -> int:
        sent = await send_due_emails(self.services)
        # A short round means the queue is drained: pause. A full one: go on at once.
        return sent if sent >= BATCH else 0


def jobs(services: Services) -> list[EmailDeliveryWorker]:
    return [EmailDeliveryWorker(services)] if services.settings.smtp_host else []
