"""Webhook subscriptions and their delivery logs (admins)."""

from __future__ import annotations

from aiohttp import web

from schemas.admin import WebhookSecretRotated, WebhookUpdate
from schemas.backbone import WebhookCreate, WebhookCreated, WebhookDeliveryPublic, WebhookPublic
from schemas.common import Page, PageQuery
from server.errors import NotFound
from server.http import authz
from server.http.api import ApiRouter, body_of, json_response, match_info, query_of
from server.http.request_meta import origin
from server.keys import SERVICES
from server.services import webhooks as commands
from server.storage import webhooks

router = ApiRouter("webhooks")
ADMIN_ONLY = commands.ADMINS


@router.post("/api/v1/webhooks", summary="Subscribe a URL to events (the secret is shown only in this reply)",
             body=WebhookCreate, response=WebhookCreated, status=201, roles=ADMIN_ONLY,
             extra_responses={422: "Invalid URL, event type or secret; or a non-public target address"})
async def create_webhook(request: web.Request) -> web.Response:
    body = await body_of(request, WebhookCreate)
    doc = await commands.create_webhook(request.app[SERVICES], authz.principal(request), body, origin(request))
    return json_response({**webhooks.public_subscription(doc), "secret": doc["secret"]}, status=201)


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
    await commands.delete_webhook(request.app[SERVICES], authz.principal(request), match_info(request, "webhook_id"),
                                  origin(request))
    return web.Response(status=204)


@router.patch("/api/v1/webhooks/{webhook_id}",
              summary="Pause or resume a subscription, or change its event types. Pausing cancels pending "
                      "deliveries (redeliver them after) and queues nothing while paused: a receiver catches up "
                      "on those events from GET /api/v1/events",
              body=WebhookUpdate, response=WebhookPublic, roles=ADMIN_ONLY,
              extra_responses={404: "No such subscription"})
async def update_webhook(request: web.Request) -> web.Response:
    body = await body_of(request, WebhookUpdate)
    doc = await commands.update_webhook(request.app[SERVICES], authz.principal(request),
                                        match_info(request, "webhook_id"), body, origin(request))
    return json_response(webhooks.public_subscription(doc))


@router.post("/api/v1/webhooks/{webhook_id}/rotate-secret",
             summary="A new signing secret, shown only in this reply. The old secret stays valid for 24 hours: until "
                     "then each delivery's webhook-signature carries two signatures, new first ('v1,<new> v1,<old>')",
             response=WebhookSecretRotated, roles=ADMIN_ONLY, extra_responses={404: "No such subscription"})
async def rotate_secret(request: web.Request) -> web.Response:
    doc = await commands.rotate_webhook_secret(request.app[SERVICES], authz.principal(request),
                                               match_info(request, "webhook_id"), origin(request))
    return json_response({**webhooks.public_subscription(doc), "secret": doc["secret"],
                          "previous_secret_valid_until": doc["previous_secret_until"]})


@router.post("/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
             summary="Send a delivered, failed or cancelled delivery again, now, with a fresh attempt budget",
             response=WebhookDeliveryPublic, roles=ADMIN_ONLY,
             extra_responses={404: "No such delivery of this subscription",
                              409: "Still pending, or the subscription is paused"})
async def redeliver(request: web.Request) -> web.Response:
    doc = await commands.redeliver(request.app[SERVICES], authz.principal(request),
                                   match_info(request, "webhook_id"), match_info(request, "delivery_id"),
                                   origin(request))
    return json_response(webhooks.public_delivery(doc))


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
