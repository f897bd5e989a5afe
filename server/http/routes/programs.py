"""Programs (campaigns of visits) and the assignments generated from them: parse, call
server.services.programs, serialize."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from schemas.admin import AssignmentUpdate, ProgramUpdate, Reason
from schemas.admin import ProgramCancelled as ProgramCancelledPublic
from schemas.audits import (
    AssignmentList,
    AssignmentPublic,
    AssignmentQuery,
    ProgramCreate,
    ProgramPublic,
)
from schemas.common import Page, PageQuery
from server.errors import NotFound
from server.http import authz
from server.http.api import ApiRouter, body_of, json_response, match_info, query_of
from server.http.request_meta import origin
from server.keys import SERVICES
from server.services import programs as planning
from server.storage import programs

router = ApiRouter("programs")
PLANNERS = planning.PLANNERS


@router.post(
    "/api/v1/programs",
    summary="Create a program of visits",
    body=ProgramCreate,
    response=ProgramPublic,
    status=201,
    roles=PLANNERS,
    extra_responses={422: "Unknown or retired checklist; unknown or closed branch; unknown region"},
)
async def create_program(request: web.Request) -> web.Response:
    body = await body_of(request, ProgramCreate)
    doc = await planning.create_program(request.app[SERVICES], authz.principal(request), body, origin(request))
    return json_response(_program(doc), status=201)


def _program(doc: dict[str, Any]) -> ProgramPublic:
    return ProgramPublic.model_validate(programs.public_program(doc))


@router.get("/api/v1/programs", summary="List programs", query=PageQuery, response=Page[ProgramPublic], roles=PLANNERS)
async def list_programs(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    q = query_of(request, PageQuery)
    docs, cursor = await programs.programs_page(services.db, q.limit, q.cursor)
    items = [_program(d).model_dump(mode="json") for d in docs]
    return json_response({"items": items, "next_cursor": cursor})


@router.get("/api/v1/programs/{program_id}", summary="One program", response=ProgramPublic, roles=PLANNERS)
async def get_program(request: web.Request) -> web.Response:
    doc = await programs.program(request.app[SERVICES].db, match_info(request, "program_id"))
    if doc is None:
        raise NotFound("Program not found")
    return json_response(_program(doc))


@router.post(
    "/api/v1/programs/{program_id}/assignments",
    summary="Generate the program's visits (idempotent)",
    response=AssignmentList,
    status=201,
    roles=PLANNERS,
    extra_responses={
        200: "Already generated: the existing assignments",
        409: "The program is cancelled",
        422: "Nobody eligible or no opening day",
    },
)
async def generate_assignments(request: web.Request) -> web.Response:
    docs, created = await planning.generate_assignments(request.app[SERVICES], authz.principal(request),
                                                        match_info(request, "program_id"), origin(request))
    return _assignment_list(docs, 201 if created else 200)


@router.patch(
    "/api/v1/programs/{program_id}",
    summary="Rename a program or change its dates (planned visits must still fit the period)",
    body=ProgramUpdate, response=ProgramPublic, roles=PLANNERS,
    extra_responses={404: "No such program", 409: "Cancelled, or planned visits fall outside the new period"},
)
async def update_program(request: web.Request) -> web.Response:
    body = await body_of(request, ProgramUpdate)
    doc = await planning.update_program(request.app[SERVICES], authz.principal(request),
                                        match_info(request, "program_id"), body, origin(request))
    return json_response(_program(doc))


@router.post(
    "/api/v1/programs/{program_id}/cancel",
    summary="Cancel a program: visits not started are cancelled; audits under way are kept and finish normally",
    body=Reason, response=ProgramCancelledPublic, roles=PLANNERS,
    extra_responses={404: "No such program", 409: "Already cancelled"},
)
async def cancel_program(request: web.Request) -> web.Response:
    body = await body_of(request, Reason)
    doc, cancelled, kept = await planning.cancel_program(request.app[SERVICES], authz.principal(request),
                                                         match_info(request, "program_id"), body.reason,
                                                         origin(request))
    return json_response(ProgramCancelledPublic(program=_program(doc), cancelled_assignments=cancelled,
                                                kept_assignments=kept))


@router.patch(
    "/api/v1/assignments/{assignment_id}",
    summary="Give a visit not yet started to another person and/or move it to another window (the planning "
            "rules apply: no home branch, no double booking with travel time, opening hours, the program's period)",
    body=AssignmentUpdate, response=AssignmentPublic, roles=PLANNERS,
    extra_responses={404: "No such assignment", 409: "Already started or cancelled", 422: "A planning rule refuses it"},
)
async def update_assignment(request: web.Request) -> web.Response:
    body = await body_of(request, AssignmentUpdate)
    doc = await planning.update_assignment(request.app[SERVICES], authz.principal(request),
                                           match_info(request, "assignment_id"), body, origin(request))
    return json_response(_assignment(doc))


@router.post(
    "/api/v1/assignments/{assignment_id}/cancel",
    summary="Cancel a visit not yet started",
    body=Reason, response=AssignmentPublic, roles=PLANNERS,
    extra_responses={404: "No such assignment", 409: "Already started or cancelled"},
)
async def cancel_assignment(request: web.Request) -> web.Response:
    body = await body_of(request, Reason)
    doc = await planning.cancel_assignment(request.app[SERVICES], authz.principal(request),
                                           match_info(request, "assignment_id"), body.reason, origin(request))
    return json_response(_assignment(doc))


def _assignment(doc: dict[str, Any], *, show_assignee: bool = True) -> AssignmentPublic:
    return AssignmentPublic.model_validate(programs.public_assignment(doc, show_assignee=show_assignee))


def _assignment_list(docs: list[dict[str, Any]], status: int) -> web.Response:
    items = [_assignment(d).model_dump(mode="json") for d in docs]
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
    elif q.unassigned and who.is_head_office:
        filters["assignee_id"] = None
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
        _assignment(d, show_assignee=who.is_head_office or d.get("assignee_id") == who.user_id).model_dump(mode="json")
        for d in docs
    ]
    return json_response({"items": items, "next_cursor": cursor})
