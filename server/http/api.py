"""Route declarations that carry their schemas and roles, so auth and /openapi.json come from one place."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import pymongo
from aiohttp import web
from pydantic import BaseModel, ValidationError

from server.errors import (
    BadRequest,
    MalformedJson,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
    ValidationFailed,
)
from server.http import authz
from server.keys import OPERATION, PRINCIPAL, SERVICES

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)

ANY_USER: frozenset[str] = frozenset(authz.ROLES)


@dataclass(frozen=True)
class Operation:
    """One endpoint: what it takes, what it returns and who may call it."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    roles: frozenset[str] | None = ANY_USER  # None: public
    body_content_types: tuple[str, ...] = ("application/json",)
    response_content_type: str = "application/json"
    extra_responses: dict[int, str] = field(default_factory=dict)
    raw_body: bool = False  # the handler reads the body itself (uploads, YAML)

    @property
    def has_deadline(self) -> bool:
        """JSON in, JSON out: its database work gets one deadline. Uploads, files, exports and event streams
        may rightly take long, so only their single operations are bounded (by the socket timeout)."""
        return not self.raw_body and self.response_content_type == "application/json"


class ApiRouter:
    """Collects Operations for one area of the API (auth, org, audits, ...)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.operations: list[Operation] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        roles: frozenset[str] | set[str] | None = ANY_USER,
        body_content_types: tuple[str, ...] = ("application/json",),
        response_content_type: str = "application/json",
        extra_responses: dict[int, str] | None = None,
        raw_body: bool = False,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.operations.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    handler=handler,
                    summary=summary,
                    tag=self.tag,
                    body=body,
                    query=query,
                    response=response,
                    status=status,
                    roles=frozenset(roles) if roles is not None else None,
                    body_content_types=body_content_types,
                    response_content_type=response_content_type,
                    extra_responses=extra_responses or {},
                    raw_body=raw_body,
                )
            )
            return handler

        return register

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)


def _guarded(op: Operation) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        request[OPERATION] = op
        # One deadline for all of a request's database calls: each alone is bounded by the socket timeout,
        # but a request making two against a frozen database took over 10 s (seen in `make faults`).
        budget = request.app[SERVICES].settings.db_transaction_budget_s if op.has_deadline else 0
        with pymongo.timeout(budget or None):
            if op.roles is not None:
                principal = await authz.authenticate(request)
                request[PRINCIPAL] = principal
                authz.require_role(principal, op.roles)
            return await op.handler(request)

    guarded.__name__ = op.handler.__name__
    return guarded


def mount(app: web.Application, routers: list[ApiRouter]) -> list[Operation]:
    operations: list[Operation] = []
    for router in routers:
        for op in router.operations:
            app.router.add_route(op.method, op.path, _guarded(op), name=f"{op.tag}.{op.handler.__name__}")
            operations.append(op)
    return operations


def validation_problem(exc: ValidationError, prefix: tuple[str | int, ...] = ("body",)) -> ValidationFailed:
    errors = [
        {"loc": [*prefix, *err["loc"]], "msg": err["msg"], "type": err["type"]} for err in exc.errors()
    ]
    first = ".".join(str(p) for p in errors[0]["loc"]) if errors else "body"
    return ValidationFailed(f"Invalid value at {first}", errors=errors)


_NUL = re.compile(r"\\u0000")


async def read_json(request: web.Request) -> Any:
    """The request body as JSON, with malformed input turned into a 400 problem."""
    ctype = request.content_type
    if ctype not in ("application/json", "application/merge-patch+json") and request.can_read_body:
        raise UnsupportedMediaType(f"Expected application/json, got {ctype or 'no content type'}")
    try:
        async with asyncio.timeout(request.app[SERVICES].settings.body_read_timeout_s):
            raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"Body larger than {request.client_max_size} bytes") from None
    except TimeoutError:
        raise RequestTimeout("The request body arrived too slowly", headers={"Connection": "close"}) from None
    if not raw:
        raise MalformedJson("Request body is empty; a JSON document is required")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedJson("Request body is not valid UTF-8") from None
    if "\x00" in text or _NUL.search(text):
        raise BadRequest("NUL characters are not accepted in JSON bodies")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise MalformedJson("JSON nested too deeply") from None
    except ValueError as exc:
        raise MalformedJson(f"Malformed JSON: {exc}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def body_of(request: web.Request, model: type[M]) -> M:
    """Parse and validate the JSON body against `model` (declared on the route for OpenAPI)."""
    document = await read_json(request)
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise validation_problem(exc, ("body",)) from None


def query_of(request: web.Request, model: type[M]) -> M:
    """Validate query parameters against `model`; repeated keys become lists where the model wants one."""
    params: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        params[key] = values if len(values) > 1 else values[0]
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise validation_problem(exc, ("query",)) from None


def json_response(payload: BaseModel | dict[str, Any] | list[Any], status: int = 200,
                  headers: dict[str, str] | None = None) -> web.Response:
    text = (payload.model_dump_json() if isinstance(payload, BaseModel)
            else json.dumps(payload, default=json_default, ensure_ascii=False))
    return web.Response(text=text, status=status, content_type="application/json", headers=headers)


def json_default(value: Any) -> Any:
    """RFC 3339 for datetimes (stored in UTC), plain strings for ids and other scalars."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def match_info(request: web.Request, name: str) -> str:
    value = request.match_info[name]
    if len(value) > 200:
        raise BadRequest(f"{name} is too long")
    return value
