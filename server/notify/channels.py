"""Delivering one message to one user over the channels they chose, each channel independent of the others.

Every channel writes inside the caller's transaction (the inbox entry, an email_outbox document, an event
for webhooks), so nothing leaves the process before the commit; SMTP and HTTP happen in delivery workers.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pymongo.errors import PyMongoError

from schemas.rectification_events import NotificationCreated
from server.context import Services, UnitOfWork
from server.db import Database
from server.notify.messages import Message
from server.notify.stream import Notifier, notifier_of
from server.settings import Settings
from server.storage import notifications

log = logging.getLogger("branch_audit.notify")


@dataclass(frozen=True)
class Recipient:
    user_id: str
    role: str
    language: str
    email: str | None
    prefs: dict[str, bool] = field(default_factory=lambda: dict(notifications.DEFAULT_PREFERENCES))


class Channel(Protocol):
    name: str

    async def deliver(
        self, uow: UnitOfWork, recipient: Recipient, message: Message, notification_id: str
    ) -> None: ...


class InAppChannel:
    name = "in_app"

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    async def deliver(
        self, uow: UnitOfWork, recipient: Recipient, message: Message, notification_id: str
    ) -> None:
        if not recipient.prefs.get("in_app", True):
            return
        await notifications.insert_notification(
            uow.db,
            uow.session,
            notification_id=notification_id,
            user_id=recipient.user_id,
            kind=message.kind,
            title=message.title,
            body=message.text,
            data=message.data,
            now=uow.now,
        )
        self.notifier.wake_soon(recipient.user_id)


class EmailChannel:
    name = "email"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def deliver(
        self, uow: UnitOfWork, recipient: Recipient, message: Message, notification_id: str
    ) -> None:
        if not (self.settings.smtp_host and recipient.email and recipient.prefs.get("email", True)):
            return
        await notifications.queue_email(
            uow.db,
            uow.session,
            to=recipient.email,
            subject=message.title,
            text=message.text,
            html=message.html,
            language=recipient.language,
            user_id=recipient.user_id,
            notification_id=notification_id,
            now=uow.now,
        )


class WebhookChannel:
    """An event for integrations; the backbone's webhook handler delivers it to subscribers."""

    name = "webhook"

    async def deliver(
        self, uow: UnitOfWork, recipient: Recipient, message: Message, notification_id: str
    ) -> None:
        if not recipient.prefs.get("webhook", False):
            return
        rectification_id = message.data.get("rectification_id")
        uow.emit(
            NotificationCreated(
                notification_id=notification_id,
                user_id=recipient.user_id,
                kind=message.kind,
                title=message.title,
                rectification_id=str(rectification_id) if rectification_id else None,
            ),
            subject_type="notification",
            subject_id=notification_id,
            user_id=recipient.user_id,
        )


class NoopChannel:
    """Delivers nothing (benchmarks measure the scheduling, not the channels)."""

    name = "noop"

    async def deliver(
        self, uow: UnitOfWork, recipient: Recipient, message: Message, notification_id: str
    ) -> None:
        return None


def channels_of(services: Services) -> Sequence[Channel]:
    """The process's channels; tests and benchmarks may put their own in services.shared.notify_channels."""
    if services.shared.notify_channels is None:
        services.shared.notify_channels = [
            InAppChannel(notifier_of(services)), EmailChannel(services.settings), WebhookChannel()
        ]
    return list(services.shared.notify_channels)


async def deliver(
    uow: UnitOfWork, recipient: Recipient, message: Message, channels: Sequence[Channel]
) -> str:
    """Send over every channel; a failing channel is logged and skipped, database errors abort (and retry)
    the whole transaction. Returns the notification id shared by the channels."""
    notification_id = str(uuid.uuid4())
    for channel in channels:
        try:
            await channel.deliver(uow, recipient, message, notification_id)
        except PyMongoError:
            raise
        except Exception:
            log.exception(
                "notification channel failed", extra={"channel": channel.name, "user_id": recipient.user_id}
            )
    return notification_id


async def load_recipients(db: Database, user_ids: Sequence[str | None]) -> dict[str, Recipient]:
    """Active users by id with their language, email and channel preferences (two queries)."""
    wanted = sorted({u for u in user_ids if u})
    if not wanted:
        return {}
    users = await db.users.find(
        {"_id": {"$in": wanted}, "active": {"$ne": False}}, {"role": 1, "language": 1, "email": 1}
    ).to_list()
    prefs = await notifications.preferences(db, [u["_id"] for u in users])
    return {
        u["_id"]: Recipient(
            user_id=u["_id"],
            role=u.get("role", ""),
            language=u.get("language") or "en",
            email=u.get("email"),
            prefs=prefs[u["_id"]],
        )
        for u in users
    }


async def users_with_role(db: Database, role: str) -> list[str]:
    docs = await db.users.find({"role": role, "active": {"$ne": False}}, {"_id": 1}).sort("_id", 1).to_list()
    return [d["_id"] for d in docs]
