"""The trail for compliance: who did what, when, from where."""

from __future__ import annotations

from aiohttp import web

from schemas.backbone import TrailEntryPublic, TrailQuery
from schemas.common import Page
from server.http import authz
from server.http.api import ApiRouter, json_response, query_of
from server.keys import SERVICES
from server.storage import trail

router = ApiRouter("trail")
TRAIL_READERS = authz.HEAD_OFFICE


@router.get("/api/v1/trail", summary="Trail entries, newest first, by entity, related entity, actor, action",
            query=TrailQuery, response=Page[TrailEntryPublic], roles=TRAIL_READERS)
async def list_trail(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    q = query_of(request, TrailQuery)
    wanted = {"entity_id": q.entity_id, "related_ids": q.related_id, "actor_id": q.actor_id,
              "action": q.action}
    filters = {k: v for k, v in wanted.items() if v}
    docs, cursor = await trail.page(services.db, filters, q.limit, q.cursor)
    return json_response({"items": [trail.public_entry(d) for d in docs], "next_cursor": cursor})
