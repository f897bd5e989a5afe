"""Programs (campaigns of visits) and the assignments generated from them."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pymongo.errors import DuplicateKeyError

from schemas.audits import (
    AssignmentList,
    AssignmentPublic,
    AssignmentQuery,
    ProgramCreate,
    ProgramPublic,
)
from schemas.common import Page, PageQuery
from server.context import UnitOfWork
from server.errors import NotFound, ValidationFailed, field_error
from server.http import authz
from server.http.api import ApiRouter, body_of, json_response, match_info, query_of
from server.http.request_meta import actor
from server.http.routes.audits import current_checklist
from server.keys import SERVICES
from server.planning import plan_program, program_document
from server.storage import org, programs

router = ApiRouter("programs")
PLANNERS = frozenset({authz.COMPLIANCE, authz.ADMIN})


@router.post(
    "/api/v1/programs",
    summary="Create a program of visits",
    body=ProgramCreate,
    response=ProgramPublic,
    status=201,
    roles=PLANNERS,
)
async def create_program(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = await body_of(request, ProgramCreate)
    if await current_checklist(services, body.checklist_key) is None:
        raise ValidationFailed(
            "Unknown checklist", errors=[field_error(["body", "checklist_key"], "no published checklist")]
        )
    if body.branch_ids:
        found = {b["_id"] for b in await org.branches_in(services.db, branch_ids=body.branch_ids)}
        unknown = [b for b in body.branch_ids if b not in found]
        if unknown:
            raise ValidationFailed(
                "Unknown branches",
                errors=[
                    field_error(["body", "branch_ids", body.branch_ids.index(b)], "no such branch") for b in unknown
                ],
            )
    for index, region_id in enumerate(body.region_ids or []):
        if await org.region(services.db, region_id) is None:
            raise ValidationFailed(
                "Unknown region", errors=[field_error(["body", "region_ids", index], "no such region")]
            )
    who = authz.principal(request)
    doc = program_document(
        name=body.name, checklist_key=body.checklist_key, branch_ids=body.branch_ids or [],
        region_ids=body.region_ids or [], starts_on=body.starts_on, ends_on=body.ends_on,
        visits_per_branch=body.visits_per_branch, channel=body.channel, covert=body.covert,
        created_by=who.user_id, now=services.clock.now(),
    )

    async def work(uow: UnitOfWork) -> None:
        await programs.insert_program(uow.db, doc, uow.session)
        uow.record("program.create", "program", doc["_id"], {"name": body.name, "covert": body.covert})

    await services.transact(actor(request), work)
    return json_response(ProgramPublic.model_validate(programs.public_program(doc)), status=201)


@router.get("/api/v1/programs", summary="List programs", query=PageQuery, response=Page[ProgramPublic], roles=PLANNERS)
async def list_programs(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    q = query_of(request, PageQuery)
    docs, cursor = await programs.programs_page(services.db, q.limit, q.cursor)
    items = [ProgramPublic.model_validate(programs.public_program(d)).model_dump(mode="json") for d in docs]
    return json_response({"items": items, "next_cursor": cursor})


@router.get("/api/v1/programs/{program_id}", summary="One program", response=ProgramPublic, roles=PLANNERS)
async def get_program(request: web.Request) -> web.Response:
    doc = await programs.program(request.app[SERVICES].db, match_info(request, "program_id"))
    if doc is None:
        raise NotFound("Program not found")
    return json_response(ProgramPublic.model_validate(programs.public_program(doc)))


@router.post(
    "/api/v1/programs/{program_id}/assignments",
    summary="Generate the program's visits (idempotent)",
    response=AssignmentList,
    status=201,
    roles=PLANNERS,
    extra_responses={
        200: "Already generated: the existing assignments",
        422: "Nobody eligible or no opening day",
    },
)
async def generate_assignments(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    db = services.db
    program = await programs.program(db, match_info(request, "program_id"))
    if program is None:
        raise NotFound("Program not found")
    if program.get("assignments_generated_at"):
        return _assignment_list(await programs.assignments_of_program(db, program["_id"]), 200)
    docs = await plan_program(db, program)

    async def work(uow: UnitOfWork) -> bool:
        fresh = await uow.db.programs.find_one({"_id": program["_id"]}, session=uow.session)
        if fresh is None or fresh.get("assignments_generated_at"):
            return False
        await programs.insert_assignments(uow.db, docs, program["_id"], uow.now, uow.session)
        uow.record("program.generate_assignments", "program", program["_id"], {"assignments": len(docs)})
        return True

    try:
        created = await services.transact(actor(request), work)
    except DuplicateKeyError:
        created = False  # a concurrent request generated the same (deterministic) assignments
    if not created:
        return _assignment_list(await programs.assignments_of_program(db, program["_id"]), 200)
    return _assignment_list(docs, 201)


def _assignment_list(docs: list[dict[str, Any]], status: int) -> web.Response:
    items = [
        AssignmentPublic.model_validate(programs.public_assignment(d, show_assignee=True)).model_dump(mode="json")
        for d in docs
    ]
    return json_response({"items": items, "next_cursor": None}, status=status)


@router.get(
    "/api/v1/assignments",
    summary="Planned visits (mine=true: the caller's own)",
    query=AssignmentQuery,
    response=AssignmentList,
)
async def list_assignments(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    q = query_of(request, AssignmentQuery)
    who = authz.principal(request)
    filters: dict[str, Any] = {
        k: v for k, v in {"program_id": q.program_id, "branch_id": q.branch_id, "status": q.status}.items() if v
    }
    if who.role in authz.FIELD_ROLES or (q.mine and who.is_head_office):
        filters["assignee_id"] = who.user_id
    elif not who.is_head_office:
        # Branch roles and integrations never learn of covert visits, nor who comes.
        filters["covert"] = False
        scope = authz.branch_scope_filter(who)
        for key, value in scope.items():
            if key in filters and filters[key] != value:
                return json_response({"items": [], "next_cursor": None})
            filters[key] = value
    docs, cursor = await programs.assignments_page(services.db, filters, q.limit, q.cursor)
    items = [
        AssignmentPublic.model_validate(
            programs.public_assignment(d, show_assignee=who.is_head_office or d.get("assignee_id") == who.user_id)
        ).model_dump(mode="json")
        for d in docs
    ]
    return json_response({"items": items, "next_cursor": cursor})
