"""Webhook subscriptions: subscribing, pausing and resuming, changing event types, rotating the secret,
delivering one event again, unsubscribing.

Pausing (active false) cancels what was pending, as an automatic disable does; those deliveries, like any
failed one, can be redelivered once the receiver is back. A rotated secret keeps signing, next to the new
one, for server.webhooks.signing.ROTATION_OVERLAP."""

from __future__ import annotations

import uuid
from typing import Any

from schemas.admin import WebhookUpdate
from schemas.backbone import WebhookCreate
from schemas.events import WebhookDeliveryRedelivered, WebhookSecretRotated, WebhookUpdated
from server.context import Services, UnitOfWork
from server.db import Doc
from server.domain import access
from server.domain.access import Principal
from server.errors import InvalidTransition, NotFound, ValidationFailed, field_error
from server.services import NO_ORIGIN, Origin, actor_of, found
from server.storage import webhooks as store
from server.webhooks import signing
from server.webhooks.targets import TargetRefused, check_target

ADMINS = access.ADMINISTRATORS
PAUSED = "paused by an admin"


async def create_webhook(services: Services, caller: Principal, command: WebhookCreate,
                         origin: Origin = NO_ORIGIN) -> Doc:
    """Subscribe a public URL to event types; the secret (given or generated) is in the returned document."""
    access.require_role(caller, ADMINS)
    try:
        await check_target(command.url, allow_private=services.settings.webhook_allow_private)
    except TargetRefused as exc:
        raise ValidationFailed(f"Webhook URL refused: {exc}", errors=[field_error(["body", "url"], str(exc))]) from None
    secret = command.secret or signing.generate_secret()
    try:
        signing.secret_key(secret)
    except ValueError as exc:
        raise ValidationFailed(f"Invalid secret: {exc}", errors=[field_error(["body", "secret"], str(exc))]) from None
    webhook_id = str(uuid.uuid4())
    doc: dict[str, Any] = {
        "_id": webhook_id, "url": command.url, "event_types": command.event_types, "secret": secret,
        "description": command.description, "active": True, "consecutive_failures": 0,
        "created_at": services.clock.now(), "created_by": caller.user_id,
    }

    async def work(uow: UnitOfWork) -> None:
        await store.insert_subscription(uow.db, doc, uow.session)
        uow.record("webhook.create", "webhook_subscription", webhook_id,
                   {"url": command.url, "event_types": command.event_types})

    await services.transact(actor_of(caller, origin), work)
    return doc


async def delete_webhook(services: Services, caller: Principal, webhook_id: str, origin: Origin = NO_ORIGIN) -> None:
    """Unsubscribe; pending deliveries are cancelled and the delivery log stays."""
    access.require_role(caller, ADMINS)

    async def work(uow: UnitOfWork) -> bool:
        deleted = await store.delete_subscription(uow.db, webhook_id, uow.now, uow.session)
        if deleted:
            uow.record("webhook.delete", "webhook_subscription", webhook_id)
        return deleted

    if not await services.transact(actor_of(caller, origin), work):
        raise NotFound("Webhook subscription not found")


async def update_webhook(services: Services, caller: Principal, webhook_id: str, command: WebhookUpdate,
                         origin: Origin = NO_ORIGIN) -> Doc:
    """Pause or resume a subscription, or change the event types it receives."""
    access.require_role(caller, ADMINS)

    async def work(uow: UnitOfWork) -> Doc:
        before = found(await store.subscription_in(uow.db, webhook_id, uow.session), "Webhook subscription")
        changes: dict[str, Any] = {}
        unset: list[str] = []
        if command.event_types is not None and command.event_types != before["event_types"]:
            changes["event_types"] = command.event_types
        was_active = bool(before.get("active", True))
        if command.active is not None and command.active != was_active:
            changes["active"] = command.active
            if command.active:
                # Resumed: a fresh start, the failures that led to a disable no longer count.
                changes["consecutive_failures"] = 0
                unset += ["disabled_at", "disabled_reason"]
            else:
                changes |= {"disabled_at": uow.now, "disabled_reason": PAUSED}
                await store.cancel_pending(uow.db, webhook_id, uow.now, "subscription paused", uow.session)
        if not changes:
            return before
        await store.set_subscription_fields(uow.db, webhook_id, {**changes, "updated_at": uow.now}, uow.session,
                                            unset=unset)
        after = {k: v for k, v in {**before, **changes}.items() if k not in unset}
        uow.emit(WebhookUpdated(subscription_id=webhook_id, active=bool(after.get("active", True)),
                                event_types=after["event_types"]),
                 subject_type="webhook_subscription", subject_id=webhook_id)
        uow.record("webhook.update", "webhook_subscription", webhook_id,
                   {"changed": sorted(k for k in changes if k in ("active", "event_types")),
                    "active": after.get("active", True), "event_types": after["event_types"]})
        return after

    return await services.transact(actor_of(caller, origin), work)


async def rotate_webhook_secret(services: Services, caller: Principal, webhook_id: str,
                                origin: Origin = NO_ORIGIN) -> Doc:
    """A new secret, shown once (in the returned document); the old one signs too until the overlap ends."""
    access.require_role(caller, ADMINS)
    secret = signing.generate_secret()

    async def work(uow: UnitOfWork) -> Doc:
        before = found(await store.subscription_in(uow.db, webhook_id, uow.session), "Webhook subscription")
        until = uow.now + signing.ROTATION_OVERLAP
        changes = {"secret": secret, "previous_secret": before["secret"], "previous_secret_until": until,
                   "secret_rotated_at": uow.now}
        await store.set_subscription_fields(uow.db, webhook_id, changes, uow.session)
        uow.emit(WebhookSecretRotated(subscription_id=webhook_id, previous_secret_valid_until=until),
                 subject_type="webhook_subscription", subject_id=webhook_id)
        uow.record("webhook.rotate_secret", "webhook_subscription", webhook_id,
                   {"previous_secret_valid_until": until.isoformat()})
        return {**before, **changes}

    return await services.transact(actor_of(caller, origin), work)


async def redeliver(services: Services, caller: Principal, webhook_id: str, delivery_id: str,
                    origin: Origin = NO_ORIGIN) -> Doc:
    """Send one delivery again, now, with a fresh attempt budget (an active subscription's, not one pending)."""
    access.require_role(caller, ADMINS)

    async def work(uow: UnitOfWork) -> Doc:
        subscription = await store.subscription_in(uow.db, webhook_id, uow.session)
        delivery = await store.delivery_in(uow.db, delivery_id, uow.session)
        if subscription is None or delivery is None or delivery["subscription_id"] != webhook_id:
            raise NotFound("No such delivery of this subscription")
        if not subscription.get("active", True):
            raise InvalidTransition("The subscription is paused: resume it first")
        if delivery["status"] == store.PENDING:
            raise InvalidTransition("The delivery is still pending")
        await store.deliver_again(uow.db, delivery_id, uow.now, uow.session)
        uow.emit(WebhookDeliveryRedelivered(subscription_id=webhook_id, delivery_id=delivery_id,
                                            event_id=delivery["event_id"]),
                 subject_type="webhook_subscription", subject_id=webhook_id)
        uow.record("webhook.redeliver", "webhook_subscription", webhook_id,
                   {"delivery_id": delivery_id, "event_id": delivery["event_id"], "was": delivery["status"]})
        return {**delivery, "status": store.PENDING, "attempts": 0, "next_attempt_at": uow.now}

    return await services.transact(actor_of(caller, origin), work)
