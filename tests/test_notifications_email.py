"""Email through a real local SMTP server (aiosmtpd): both bodies, the recipient's language, retries."""

from __future__ import annotations

import email
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from server.clock import FakeClock
from server.context import ActorInfo, Services, UnitOfWork
from server.embedded import free_port
from server.handlers.notifications import HANDLERS as NOTIFICATION_HANDLERS
from server.jobs.email_delivery import send_due_emails
from tests.conftest import reconfigure
from tests.test_rectifications_support import load_org, publish_checklist, release_audit


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's hook name
        parsed = email.message_from_bytes(envelope.original_content, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted"


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def smtp_server(smtp_port: int) -> Iterator[Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    yield inbox
    controller.stop()


async def created_notification(services: Services) -> dict[str, Any]:
    """Release an audit and run the notifications handler for its rectification.created event."""
    org = await load_org(services)
    await publish_checklist(services)
    rect = (await release_audit(services, org))[0]
    event = await services.db.events.find_one({"type": "rectification.created"})
    assert event is not None

    async def work(uow: UnitOfWork) -> None:
        await NOTIFICATION_HANDLERS[0].handle(uow, event)

    await services.transact(ActorInfo.system("dispatcher"), work)
    return rect


async def test_email_reaches_a_real_smtp_server_with_plain_and_html_bodies(
        services: Services, demo: object, smtp_server: Inbox, smtp_port: int) -> None:
    reconfigure(services, smtp_host="127.0.0.1")
    reconfigure(services, smtp_port=smtp_port)
    await created_notification(services)
    queued = await services.db.email_outbox.find({}).to_list()
    assert [q["to"] for q in queued] == ["ljz.head@demo.branch-audit.example"]
    assert await send_due_emails(services) == 1
    assert await send_due_emails(services) == 0
    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert smtp_server.recipients == [["ljz.head@demo.branch-audit.example"]]
    assert message["Subject"].startswith("新整改项")  # the branch head reads zh-CN
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    markup = message.get_body(("html",))
    assert plain is not None and markup is not None
    assert "大厅整洁" in plain.get_content()
    assert "<h1>" in markup.get_content() and "大厅整洁" in markup.get_content()
    stored = await services.db.email_outbox.find_one({})
    assert stored is not None and stored["status"] == "sent"
    # The in-app copy exists too.
    assert await services.db.notifications.count_documents({"kind": "rectification.created"}) == 1


async def test_an_unreachable_smtp_server_is_retried_later_without_blocking_in_app(
        services: Services, demo: object, clock: FakeClock, smtp_port: int) -> None:
    reconfigure(services, smtp_host="127.0.0.1")
    reconfigure(services, smtp_port=smtp_port)  # nothing listens yet
    await created_notification(services)
    assert await send_due_emails(services) == 0
    failed = await services.db.email_outbox.find_one({})
    assert failed is not None
    assert failed["status"] == "pending" and failed["attempts"] == 1 and failed["last_error"]
    assert failed["next_attempt_at"] == clock.now() + timedelta(seconds=30)
    assert await services.db.notifications.count_documents({"kind": "rectification.created"}) == 1
    assert await send_due_emails(services) == 0  # not due again yet

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        clock.advance(timedelta(seconds=30))
        assert await send_due_emails(services) == 1
    finally:
        controller.stop()
    assert len(inbox.messages) == 1
    sent = await services.db.email_outbox.find_one({})
    assert sent is not None and sent["status"] == "sent" and sent["attempts"] == 2


async def test_after_max_attempts_an_email_is_parked_as_failed(
        services: Services, demo: object, clock: FakeClock, smtp_port: int) -> None:
    reconfigure(services, smtp_host="127.0.0.1")
    reconfigure(services, smtp_port=smtp_port)
    reconfigure(services, email_max_attempts=2)
    await created_notification(services)
    assert await send_due_emails(services) == 0
    clock.advance(timedelta(minutes=5))
    assert await send_due_emails(services) == 0
    parked = await services.db.email_outbox.find_one({})
    assert parked is not None and parked["status"] == "failed" and parked["attempts"] == 2
    clock.advance(timedelta(hours=2))
    assert await send_due_emails(services) == 0
