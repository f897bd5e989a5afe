"""Regions, branches and users (administered by admins, read within each caller's scope)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from schemas.admin import BranchClosed as BranchClosedPublic
from schemas.admin import BranchUpdate, OpenWork, Reason, RegionUpdate, SessionList, UserUpdate
from schemas.audits import AssignmentPublic
from schemas.common import Page, PageQuery
from schemas.org import (
    BranchCreate,
    BranchPublic,
    BranchQuery,
    RegionCreate,
    RegionPublic,
    UserCreate,
    UserPublic,
    UserQuery,
)
from server.errors import NotFound
from server.http import authz
from server.http.api import ApiRouter, body_of, json_response, match_info, query_of
from server.http.request_meta import origin
from server.keys import SERVICES
from server.services import organisation
from server.services import users as people
from server.storage import auth as auth_store
from server.storage import org, programs, users

router = ApiRouter("organisation")
ADMIN_ONLY = people.ADMINS
USER_READERS = authz.HEAD_OFFICE


@router.get("/api/v1/regions", summary="List regions", query=PageQuery, response=Page[RegionPublic])
async def list_regions(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    q = query_of(request, PageQuery)
    who = authz.principal(request)
    scope = {"_id": who.region_id} if who.role == authz.REGIONAL_MANAGER else {}
    docs, cursor = await org.regions_page(services.db, scope, q.limit, q.cursor)
    return json_response({"items": [org.public_region(d) for d in docs], "next_cursor": cursor})


@router.post("/api/v1/regions", summary="Create a region", body=RegionCreate, response=RegionPublic, status=201,
             roles=ADMIN_ONLY, extra_responses={409: "The code is taken"})
async def create_region(request: web.Request) -> web.Response:
    body = await body_of(request, RegionCreate)
    doc = await organisation.create_region(request.app[SERVICES], authz.principal(request), body, origin(request))
    return json_response(org.public_region(doc), status=201)


@router.patch("/api/v1/regions/{region_id}", summary="Change a region's name, code or manager", body=RegionUpdate,
              response=RegionPublic, roles=ADMIN_ONLY,
              extra_responses={404: "No such region", 409: "The code is taken"})
async def update_region(request: web.Request) -> web.Response:
    body = await body_of(request, RegionUpdate)
    doc = await organisation.update_region(request.app[SERVICES], authz.principal(request),
                                           match_info(request, "region_id"), body, origin(request))
    return json_response(org.public_region(doc))


@router.get("/api/v1/branches", summary="List the branches in the caller's scope", query=BranchQuery,
            response=Page[BranchPublic])
async def list_branches(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    q = query_of(request, BranchQuery)
    who = authz.principal(request)
    scope = authz.branch_scope_filter(who, branch_field="_id")
    if q.region_id:
        scope = {**scope, "region_id": q.region_id} if "region_id" not in scope else scope
        if scope.get("region_id") != q.region_id:
            scope = {"_id": None}
    docs, cursor = await org.branches_page(services.db, scope, q.limit, q.cursor)
    return json_response({"items": [org.public_branch(d) for d in docs], "next_cursor": cursor})


@router.get("/api/v1/branches/{branch_id}", summary="One branch", response=BranchPublic,
            extra_responses={404: "Unknown or outside the caller's scope"})
async def get_branch(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    doc = await org.branch(services.db, match_info(request, "branch_id"))
    if doc is None:
        raise NotFound("Branch not found")
    authz.ensure_branch_visible(authz.principal(request), doc["_id"], doc["region_id"])
    return json_response(org.public_branch(doc))


@router.post("/api/v1/branches", summary="Create a branch", body=BranchCreate, response=BranchPublic, status=201,
             roles=ADMIN_ONLY, extra_responses={409: "The code is taken"})
async def create_branch(request: web.Request) -> web.Response:
    body = await body_of(request, BranchCreate)
    doc = await organisation.create_branch(request.app[SERVICES], authz.principal(request), body, origin(request))
    return json_response(org.public_branch(doc), status=201)


@router.patch(
    "/api/v1/branches/{branch_id}",
    summary="Change a branch. A new time zone moves the deadlines of its open work to the same local time; a new "
            "geofence applies to later visits only; a new head moves to this branch (their sessions end)",
    body=BranchUpdate, response=BranchPublic, roles=ADMIN_ONLY, extra_responses={404: "No such branch"},
)
async def update_branch(request: web.Request) -> web.Response:
    body = await body_of(request, BranchUpdate)
    doc = await organisation.update_branch(request.app[SERVICES], authz.principal(request),
                                           match_info(request, "branch_id"), body, origin(request))
    return json_response(org.public_branch(doc))


@router.post(
    "/api/v1/branches/{branch_id}/close",
    summary="Close a branch: no new visits are planned there; its open work is listed for compliance to finish "
            "or cancel; its history stays",
    body=Reason, response=BranchClosedPublic, roles=ADMIN_ONLY,
    extra_responses={404: "No such branch", 409: "Already closed"},
)
async def close_branch(request: web.Request) -> web.Response:
    body = await body_of(request, Reason)
    doc, open_work = await organisation.close_branch(request.app[SERVICES], authz.principal(request),
                                                     match_info(request, "branch_id"), body.reason, origin(request))
    return json_response(BranchClosedPublic(
        branch=BranchPublic.model_validate(org.public_branch(doc)),
        open_work=OpenWork(
            assignments=[AssignmentPublic.model_validate(programs.public_assignment(a, show_assignee=True))
                         for a in open_work["assignments"]],
            audits=[{"id": a["_id"], "status": a["status"], "program_id": a.get("program_id"),
                     "started_at": a.get("started_at")} for a in open_work["audits"]],
            rectifications=[{"id": r["_id"], "status": r["status"], "due_at": r.get("due_at")}
                            for r in open_work["rectifications"]],
        ),
    ))


@router.post("/api/v1/users", summary="Create a user", body=UserCreate, response=UserPublic, status=201,
             roles=ADMIN_ONLY, extra_responses={409: "The username is taken"})
async def create_user(request: web.Request) -> web.Response:
    body = await body_of(request, UserCreate)
    doc = await people.create_user(request.app[SERVICES], authz.principal(request), body, origin(request))
    return json_response(users.public_user(doc), status=201)


@router.patch(
    "/api/v1/users/{user_id}",
    summary="Change a user. Deactivating them, or changing their role or scope, ends their sessions (their next "
            "request is 401); deactivation hands their visits not started back to compliance",
    body=UserUpdate, response=UserPublic, roles=ADMIN_ONLY,
    extra_responses={404: "No such user", 409: "The last active admin cannot be deactivated or demoted"},
)
async def update_user(request: web.Request) -> web.Response:
    body = await body_of(request, UserUpdate)
    doc = await people.update_user(request.app[SERVICES], authz.principal(request), match_info(request, "user_id"),
                                   body, origin(request))
    return json_response(users.public_user(doc))


@router.get("/api/v1/users", summary="List users", query=UserQuery, response=Page[UserPublic], roles=USER_READERS)
async def list_users(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    q = query_of(request, UserQuery)
    filters: dict[str, Any] = {
        k: v for k, v in {"role": q.role, "branch_id": q.branch_id, "region_id": q.region_id}.items() if v}
    if q.active is not None:
        filters["active"] = {"$ne": False} if q.active else False
    if q.q:
        filters["$or"] = users.search_filter(q.q)
    docs, cursor = await users.page(services.db, filters, q.limit, q.cursor)
    return json_response({"items": [users.public_user(d) for d in docs], "next_cursor": cursor})


@router.get("/api/v1/users/{user_id}", summary="One user (admins, compliance, or oneself)", response=UserPublic)
async def get_user(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = authz.principal(request)
    user_id = match_info(request, "user_id")
    # Anyone else gets 404: a shopper's account must not be confirmed to branch staff.
    if who.role not in USER_READERS and who.user_id != user_id:
        raise NotFound("User not found")
    doc = await users.by_id(services.db, user_id)
    if doc is None:
        raise NotFound("User not found")
    return json_response(users.public_user(doc))


@router.get("/api/v1/users/{user_id}/sessions", summary="A user's open sessions: since when, until when, from where",
            response=SessionList, roles=ADMIN_ONLY, extra_responses={404: "No such user"})
async def list_user_sessions(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    user_id = match_info(request, "user_id")
    if await users.by_id(services.db, user_id) is None:
        raise NotFound("User not found")
    now = services.clock.now()
    items = [{"id": s["_id"], "created_at": s["created_at"], "expires_at": s["expires_at"],
              "client_address": s.get("client_address")}
             for s in await auth_store.open_sessions_of(services.db, user_id)
             if _aware(s["expires_at"]) > now]
    items.sort(key=lambda s: s["created_at"], reverse=True)
    return json_response(SessionList.model_validate({"items": items}))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
