"""The in-app inbox, its live stream (Server-Sent Events) and each user's channel preferences."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from schemas.common import Page
from schemas.rectifications import NotificationPreferences, NotificationPublic, NotificationQuery, UnreadCount
from server.errors import NotFound
from server.http import authz
from server.http.api import ApiRouter, body_of, json_response, match_info, query_of
from server.keys import SERVICES
from server.notify.stream import notifier_of
from server.storage import notifications as store

router = ApiRouter("notifications")
STREAM_BATCH = 100


@router.get(
    "/api/v1/notifications",
    summary="The caller's notifications, newest first",
    query=NotificationQuery,
    response=Page[NotificationPublic],
)
async def list_notifications(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = authz.principal(request)
    q = query_of(request, NotificationQuery)
    docs, cursor = await store.page(services.db, who.user_id, q.unread, q.limit, q.cursor)
    return json_response({"items": [store.public_notification(d) for d in docs], "next_cursor": cursor})


@router.get(
    "/api/v1/notifications/unread-count",
    summary="How many of the caller's notifications are unread",
    response=UnreadCount,
)
async def unread_count(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    return json_response({"count": await store.unread_count(services.db, authz.principal(request).user_id)})


@router.post(
    "/api/v1/notifications/{notification_id}/read",
    summary="Mark one of the caller's notifications read",
    response=NotificationPublic,
    extra_responses={404: "Not the caller's notification"},
)
async def mark_read(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = authz.principal(request)
    doc = await store.mark_read(
        services.db, who.user_id, match_info(request, "notification_id"), services.clock.now()
    )
    if doc is None:
        raise NotFound("Notification not found")
    return json_response(store.public_notification(doc))


def _last_event_id(request: web.Request) -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    if raw is None:
        return None
    try:
        return max(0, int(raw.strip()))
    except ValueError:
        return None


def _frame(doc: dict[str, object]) -> bytes:
    data = NotificationPublic.model_validate(store.public_notification(doc)).model_dump_json()
    return f"id: {doc['seq']}\nevent: notification\ndata: {data}\n\n".encode()


@router.get(
    "/api/v1/notifications/stream",
    summary="Server-Sent Events: the caller's new notifications",
    response_content_type="text/event-stream",
    extra_responses={200: "text/event-stream; `id:` is the notification's seq, resume with Last-Event-ID"},
)
async def stream(request: web.Request) -> web.StreamResponse:
    """Everything after Last-Event-ID first (or only new ones without it), then live. Woken by this process's
    writes, with a fallback poll for other instances' writes; a comment line as heartbeat."""
    services = request.app[SERVICES]
    who = authz.principal(request)
    settings = services.settings
    resume = _last_event_id(request)
    cursor = resume if resume is not None else await store.latest_seq(services.db, who.user_id)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    await response.write(f"retry: {int(settings.sse_poll_s * 1000)}\n: connected\n\n".encode())
    notifier = notifier_of(services)
    wake = notifier.subscribe(who.user_id)
    loop = asyncio.get_running_loop()
    last_write = loop.time()
    try:
        while not notifier.ended(wake):
            wake.clear()
            docs = await store.after_seq(services.db, who.user_id, cursor, STREAM_BATCH)
            for doc in docs:
                await response.write(_frame(doc))
                cursor = int(doc["seq"])
                last_write = loop.time()
            if len(docs) == STREAM_BATCH:
                continue
            if loop.time() - last_write >= settings.sse_heartbeat_s:
                await response.write(b": keepalive\n\n")
                last_write = loop.time()
            timeout = min(settings.sse_poll_s, settings.sse_heartbeat_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)
    except ConnectionResetError:
        pass  # the client went away; it resumes with Last-Event-ID
    finally:
        notifier.unsubscribe(who.user_id, wake)
    return response


@router.get(
    "/api/v1/me/notification-preferences",
    summary="The caller's notification channels",
    response=NotificationPreferences,
)
async def get_preferences(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = authz.principal(request)
    prefs = await store.preferences(services.db, [who.user_id])
    return json_response(prefs[who.user_id])


@router.put(
    "/api/v1/me/notification-preferences",
    summary="Choose notification channels",
    body=NotificationPreferences,
    response=NotificationPreferences,
)
async def put_preferences(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = authz.principal(request)
    body = await body_of(request, NotificationPreferences)
    await store.save_preferences(services.db, who.user_id, body.model_dump(), services.clock.now())
    return json_response(body)
