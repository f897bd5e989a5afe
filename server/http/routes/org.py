"""Regions, branches and users (administered by admins, read within each caller's scope)."""

from __future__ import annotations

import uuid

from aiohttp import web
from pymongo.errors import DuplicateKeyError

from schemas.admin import UserUpdate
from schemas.common import Page, PageQuery
from schemas.events import BranchCreated, RegionCreated
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
from server.context import UnitOfWork
from server.errors import Conflict, NotFound, ValidationFailed, field_error
from server.http import authz
from server.http.api import ApiRouter, body_of, json_response, match_info, query_of
from server.http.request_meta import actor, origin
from server.keys import SERVICES
from server.services import users as people
from server.storage import org, users

router = ApiRouter("organisation")
ADMIN_ONLY = frozenset({authz.ADMIN})
USER_READERS = frozenset({authz.ADMIN, authz.COMPLIANCE})


@router.get("/api/v1/regions", summary="List regions", query=PageQuery, response=Page[RegionPublic])
async def list_regions(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    q = query_of(request, PageQuery)
    who = authz.principal(request)
    scope = {"_id": who.region_id} if who.role == authz.REGIONAL_MANAGER else {}
    docs, cursor = await org.regions_page(services.db, scope, q.limit, q.cursor)
    return json_response({"items": [org.public_region(d) for d in docs], "next_cursor": cursor})


@router.post("/api/v1/regions", summary="Create a region", body=RegionCreate, response=RegionPublic, status=201,
             roles=ADMIN_ONLY)
async def create_region(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await body_of(request, RegionCreate)
    doc = {"_id": str(uuid.uuid4()), **body.model_dump(), "created_at": services.clock.now()}

    async def work(uow: UnitOfWork) -> None:
        await org.insert_region(uow.db, doc, uow.session)
        uow.emit(RegionCreated(region_id=doc["_id"], name=body.name), subject_type="region", subject_id=doc["_id"])
        uow.record("region.create", "region", doc["_id"], {"code": body.code, "name": body.name})

    try:
        await services.transact(actor(request), work)
    except DuplicateKeyError:
        raise Conflict(f"A region with code {body.code} already exists") from None
    return json_response(org.public_region(doc), status=201)


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
             roles=ADMIN_ONLY)
async def create_branch(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await body_of(request, BranchCreate)
    if await org.region(services.db, body.region_id) is None:
        raise ValidationFailed("Unknown region", errors=[field_error(["body", "region_id"], "no such region")])
    doc = {"_id": str(uuid.uuid4()), **body.model_dump(), "head_user_id": None, "created_at": services.clock.now()}

    async def work(uow: UnitOfWork) -> None:
        await org.insert_branch(uow.db, doc, uow.session)
        uow.emit(BranchCreated(branch_id=doc["_id"], code=body.code, region_id=body.region_id,
                               timezone=body.timezone),
                 subject_type="branch", subject_id=doc["_id"], region_id=body.region_id)
        uow.record("branch.create", "branch", doc["_id"], {"code": body.code, "name": body.name})

    try:
        await services.transact(actor(request), work)
    except DuplicateKeyError:
        raise Conflict(f"A branch with code {body.code} already exists") from None
    return json_response(org.public_branch(doc), status=201)


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
    filters = {k: v for k, v in {"role": q.role, "branch_id": q.branch_id, "region_id": q.region_id}.items() if v}
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
