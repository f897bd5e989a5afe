"""Tells people about rectification changes (branch head, verifier, approver) and admins about disabled
webhooks, over the channels each recipient chose."""

from __future__ import annotations

from typing import Any

from schemas.events import WebhookSubscriptionDisabled, event_name_of
from schemas.rectification_events import (
    RectificationCancelled,
    RectificationCreated,
    RectificationEventBase,
    RectificationExtensionDecided,
    RectificationExtensionRequested,
    RectificationRejected,
    RectificationSubmitted,
    RectificationVerified,
)
from server.context import UnitOfWork
from server.db import Doc
from server.handlers.base import on, reacting
from server.notify import channels as notify
from server.notify.messages import format_local, rectification_data, rectification_params, render
from server.storage import rectifications as store


async def _verifiers(uow: UnitOfWork, rect: Doc) -> list[str]:
    """The inspector of the audit; for covert (mystery shopper) audits compliance verifies."""
    if rect.get("inspector_id") and rect.get("auditor_role") == "inspector":
        return [rect["inspector_id"]]
    return await notify.users_with_role(uow.db, "compliance")


async def _approvers(uow: UnitOfWork, rect: Doc) -> list[str]:
    """The region's manager, or compliance when the region has none."""
    region = await uow.db.regions.find_one({"_id": rect.get("region_id")}, {"manager_user_id": 1})
    if region and region.get("manager_user_id"):
        return [region["manager_user_id"]]
    return await notify.users_with_role(uow.db, "compliance")


async def _audience(uow: UnitOfWork, payload: RectificationEventBase, rect: Doc) -> tuple[str, list[str]]:
    """(message kind, recipient ids) for a rectification event."""
    assignee = [rect["assignee_id"]] if rect.get("assignee_id") else []
    if isinstance(payload, RectificationCreated):
        return ("rectification.created", assignee) if payload.status == "open" else ("", [])
    if isinstance(payload, RectificationSubmitted):
        return "rectification.submitted", await _verifiers(uow, rect)
    if isinstance(payload, RectificationExtensionRequested):
        return "rectification.extension_requested", await _approvers(uow, rect)
    if isinstance(payload, RectificationExtensionDecided):
        approved = "rectification.extension_approved" if payload.approved else "rectification.extension_refused"
        return approved, assignee
    return event_name_of(type(payload)), assignee  # verified, rejected, cancelled


async def rectification_changed(uow: UnitOfWork, payload: RectificationEventBase, event: Doc) -> None:
    rect = await store.by_id(uow.db, payload.rectification_id, uow.session)
    if rect is None:
        return
    kind, recipient_ids = await _audience(uow, payload, rect)
    # Nobody is told about their own action.
    actor_id = (event.get("actor") or {}).get("id")
    recipients = await notify.load_recipients(uow.db, [r for r in recipient_ids if r != actor_id])
    if not kind or not recipients:
        return
    channels = notify.channels_of(uow.services)
    extension = rect.get("extension") or {}
    for recipient in recipients.values():
        extra: dict[str, Any] = {
            "comment": getattr(payload, "comment", "") or "",
            "reason": extension.get("reason", ""),
        }
        if extension.get("requested_due_at"):
            extra["requested"] = format_local(
                extension["requested_due_at"], rect.get("timezone") or "UTC", recipient.language
            )
        message = render(
            kind,
            recipient.language,
            rectification_params(rect, recipient.language, **extra),
            data=rectification_data(rect, event_id=event["_id"], status=rect["status"]),
        )
        await notify.deliver(uow, recipient, message, channels)


async def webhook_disabled(uow: UnitOfWork, disabled: WebhookSubscriptionDisabled, event: Doc) -> None:
    """Admins own integrations: tell each of them in-app (and by their other channels)."""
    admins = await notify.load_recipients(uow.db, await notify.users_with_role(uow.db, "admin"))
    channels = notify.channels_of(uow.services)
    for recipient in admins.values():
        message = render(
            "admin.webhook_disabled",
            recipient.language,
            {
                "url": disabled.url,
                "failures": disabled.consecutive_failures,
                "error": disabled.last_error or "-",
            },
            data={"subscription_id": disabled.subscription_id, "event_id": event["_id"]},
        )
        await notify.deliver(uow, recipient, message, channels)


HANDLERS = [
    reacting(
        "notifications",
        *(
            on(payload, rectification_changed)
            for payload in (
                RectificationCreated,
                RectificationSubmitted,
                RectificationVerified,
                RectificationRejected,
                RectificationExtensionRequested,
                RectificationExtensionDecided,
                RectificationCancelled,
            )
        ),
    ),
    reacting("admin-alerts", on(WebhookSubscriptionDisabled, webhook_disabled)),
]
