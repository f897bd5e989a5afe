"""Webhook subscriptions and their delivery logs (admins)."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from schemas.backbone import WebhookCreate, WebhookCreated, WebhookDeliveryPublic, WebhookPublic
from schemas.common import Page, PageQuery
from server.context import UnitOfWork
from server.errors import NotFound, ValidationFailed, field_error
from server.http import authz
from server.http.api import ApiRouter, body_of, json_response, match_info, query_of
from server.http.request_meta import actor
from server.keys import SERVICES
from server.storage import webhooks
from server.webhooks import signing
from server.webhooks.targets import TargetRefused, check_target

router = ApiRouter("webhooks")
ADMIN_ONLY = frozenset({authz.ADMIN})


@router.post("/api/v1/webhooks", summary="Subscribe a URL to events (the secret is shown only in this reply)",
             body=WebhookCreate, response=WebhookCreated, status=201, roles=ADMIN_ONLY,
             extra_responses={422: "Invalid URL, event type or secret; or a non-public target address"})
async def create_webhook(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await body_of(request, WebhookCreate)
    try:
        await check_target(body.url, allow_private=services.settings.webhook_allow_private)
    except TargetRefused as exc:
        raise ValidationFailed(f"Webhook URL refused: {exc}",
                               errors=[field_error(["body", "url"], str(exc))]) from None
    secret = body.secret or signing.generate_secret()
    try:
        signing.secret_key(secret)
    except ValueError as exc:
        raise ValidationFailed(f"Invalid secret: {exc}",
                               errors=[field_error(["body", "secret"], str(exc))]) from None
    who = authz.principal(request)
    webhook_id = str(uuid.uuid4())
    doc: dict[str, Any] = {
        "_id": webhook_id, "url": body.url, "event_types": body.event_types, "secret": secret,
        "description": body.description, "active": True, "consecutive_failures": 0,
        "created_at": services.clock.now(), "created_by": who.user_id,
    }

    async def work(uow: UnitOfWork) -> None:
        await webhooks.insert_subscription(uow.db, doc, uow.session)
        uow.record("webhook.create", "webhook_subscription", webhook_id,
                   {"url": body.url, "event_types": body.event_types})

    await services.transact(actor(request), work)
    return json_response({**webhooks.public_subscription(doc), "secret": secret}, status=201)


@router.get("/api/v1/webhooks", summary="List webhook subscriptions", query=PageQuery,
            response=Page[WebhookPublic], roles=ADMIN_ONLY)
async def list_webhooks(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    q = query_of(request, PageQuery)
    docs, cursor = await webhooks.subscriptions_page(services.db, q.limit, q.cursor)
    return json_response({"items": [webhooks.public_subscription(d) for d in docs], "next_cursor": cursor})


@router.get("/api/v1/webhooks/{webhook_id}", summary="One webhook subscription", response=WebhookPublic,
            roles=ADMIN_ONLY, extra_responses={404: "No such subscription"})
async def get_webhook(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    doc = await webhooks.subscription(services.db, match_info(request, "webhook_id"))
    if doc is None:
        raise NotFound("Webhook subscription not found")
    return json_response(webhooks.public_subscription(doc))


@router.delete("/api/v1/webhooks/{webhook_id}",
               summary="Delete a subscription; its pending deliveries are cancelled", status=204,
               roles=ADMIN_ONLY, extra_responses={404: "No such subscription"})
async def delete_webhook(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    webhook_id = match_info(request, "webhook_id")

    async def work(uow: UnitOfWork) -> bool:
        deleted = await webhooks.delete_subscription(uow.db, webhook_id, uow.now, uow.session)
        if deleted:
            uow.record("webhook.delete", "webhook_subscription", webhook_id)
        return deleted

    if not await services.transact(actor(request), work):
        raise NotFound("Webhook subscription not found")
    return web.Response(status=204)


@router.get("/api/v1/webhooks/{webhook_id}/deliveries", summary="A subscription's delivery log, newest first",
            query=PageQuery, response=Page[WebhookDeliveryPublic], roles=ADMIN_ONLY,
            extra_responses={404: "No such subscription"})
async def list_deliveries(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    webhook_id = match_info(request, "webhook_id")
    q = query_of(request, PageQuery)
    # Deliveries of a deleted subscription stay readable while any exist.
    if (await webhooks.subscription(services.db, webhook_id) is None
            and not await webhooks.has_deliveries(services.db, webhook_id)):
        raise NotFound("Webhook subscription not found")
    docs, cursor = await webhooks.deliveries_page(services.db, webhook_id, {}, q.limit, q.cursor)
    return json_response({"items": [webhooks.public_delivery(d) for d in docs], "next_cursor": cursor})
