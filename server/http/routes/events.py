"""The event feed for integrations, and the handler failures admins look after."""

from __future__ import annotations

from aiohttp import web

from schemas.backbone import EventFeedQuery, FailureQuery, HandlerFailurePublic
from schemas.common import Page
from schemas.events import EventEnvelope
from server.http import authz
from server.http.api import ApiRouter, json_response, match_info, query_of
from server.http.request_meta import origin
from server.keys import SERVICES
from server.services.events import retry_parked_event
from server.storage import outbox

router = ApiRouter("events")
FEED_READERS = frozenset({authz.ADMIN, authz.INTEGRATION})
ADMIN_ONLY = frozenset({authz.ADMIN})


@router.get("/api/v1/events",
            summary="Events in feed order after a position. next_cursor is always where to resume polling "
                    "(it does not go null at the end: the feed grows)",
            query=EventFeedQuery, response=Page[EventEnvelope], roles=FEED_READERS)
async def event_feed(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    q = query_of(request, EventFeedQuery)
    after = q.after_seq()
    docs = await outbox.events_after(services.db, after, q.limit, q.types() or None)
    items = [outbox.envelope(d).model_dump(mode="json") for d in docs]
    next_cursor = str(docs[-1]["seq"]) if docs else str(after)
    return json_response({"items": items, "next_cursor": next_cursor})


def public_failure(doc: dict[str, object]) -> dict[str, object]:
    return HandlerFailurePublic.model_validate({**doc, "id": doc["_id"]}).model_dump(mode="json")


@router.get("/api/v1/events/failures",
            summary="Events a handler failed on: retrying, queued behind a failure, or parked for an admin",
            query=FailureQuery, response=Page[HandlerFailurePublic], roles=ADMIN_ONLY)
async def list_failures(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    q = query_of(request, FailureQuery)
    filters = {k: v for k, v in {"status": q.status, "handler": q.handler}.items() if v}
    docs = await outbox.failures_page(services.db, filters, q.limit, int(q.cursor) if q.cursor else None)
    rows = docs[:q.limit]
    cursor = str(rows[-1]["seq"]) if len(docs) > q.limit else None
    return json_response({"items": [public_failure(d) for d in rows], "next_cursor": cursor})


@router.post("/api/v1/events/failures/{failure_id}/retry",
             summary="Put a parked event back in line for its handler, with a fresh attempt budget",
             response=HandlerFailurePublic, roles=ADMIN_ONLY, extra_responses={404: "No such parked failure"})
async def retry_failure(request: web.Request) -> web.Response:
    doc = await retry_parked_event(
        request.app[SERVICES], authz.principal(request), match_info(request, "failure_id"), origin=origin(request)
    )
    return json_response(public_failure(doc))
