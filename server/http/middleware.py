"""Request ids, problem+json for every error, 503 while the database is away, metrics, and authentication's
own middleware (download tickets; revocations reach every instance before the answer)."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import ValidationError
from pymongo.errors import PyMongoError

from server.db import is_unavailable
from server.errors import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Problem,
    ServiceUnavailable,
    UnsupportedMediaType,
)
from server.http.api import validation_problem
from server.http.authn import build_auth_middlewares
from server.http.metrics import Metrics
from server.http.request_meta import acceptable_request_id, client_address, current_request_id
from server.keys import REQUEST_ID

log = logging.getLogger("branch_audit.http")
# A request slower than this is logged as a warning (phones give up at about 10 s).
SLOW_REQUEST_S = 3.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem_response(problem: Problem, request_id: str | None) -> web.Response:
    body = problem.body()
    if request_id:
        body["request_id"] = request_id
    headers = dict(problem.headers)
    return web.Response(text=json.dumps(body, ensure_ascii=False), status=problem.status,
                        content_type="application/problem+json", headers=headers)


def _from_http_exception(exc: web.HTTPException) -> Problem:
    if exc.status == 404:
        return NotFound("No such resource")
    if exc.status == 405:
        allowed = getattr(exc, "allowed_methods", None) or set()
        return MethodNotAllowed("Method not allowed here", headers={"Allow": ", ".join(sorted(allowed))})
    if exc.status == 413:
        return PayloadTooLarge("Request body is too large")
    if exc.status == 415:
        return UnsupportedMediaType(exc.text or "Unsupported media type")
    problem: Problem = Problem(exc.reason or "Error")
    problem.status = exc.status
    problem.title = exc.reason or "Error"
    problem.slug = "http-" + str(exc.status)
    return problem


def build_middlewares(metrics: Metrics) -> list[Callable[..., Awaitable[web.StreamResponse]]]:
    @web.middleware
    async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
        incoming = request.headers.get("X-Request-ID")
        # 32 random hex digits, as uuid4().hex gave, at a fifth of its cost.
        request_id: str = incoming if incoming and acceptable_request_id(incoming) else os.urandom(16).hex()
        request[REQUEST_ID] = request_id
        token = current_request_id.set(request_id)
        started = time.perf_counter()
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        status = 500
        try:
            response = await _render_errors(request, handler, request_id)
            status = response.status
            response.headers["X-Request-ID"] = request_id
            return response
        finally:
            elapsed = time.perf_counter() - started
            metrics.observe_request(request.method, route, status, elapsed)
            # Slow requests are warnings so they show at the default production log level.
            level = logging.WARNING if elapsed >= SLOW_REQUEST_S else logging.INFO
            if log.isEnabledFor(level):  # the record's fields cost more than the check, at every request
                log.log(level, "request", extra={"method": request.method, "path": request.path, "route": route,
                                                 "status": status, "duration_ms": round(elapsed * 1000, 2),
                                                 "client": client_address(request)})
            current_request_id.reset(token)

    async def _render_errors(request: web.Request, handler: Handler, request_id: str) -> web.StreamResponse:
        try:
            return await handler(request)
        except Problem as problem:
            return problem_response(problem, request_id)
        except ValidationError as exc:
            return problem_response(validation_problem(exc, ()), request_id)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return problem_response(_from_http_exception(exc), request_id)
        except PyMongoError as exc:
            if not is_unavailable(exc):
                raise
            metrics.database_errors += 1
            log.warning("database unavailable", extra={"error": type(exc).__name__, "detail": str(exc)[:300],
                                                       "path": request.path})
            return problem_response(
                ServiceUnavailable("The database is unreachable; retry shortly", headers={"Retry-After": "5"}),
                request_id,
            )
        except ConnectionResetError:
            # The client went away mid-request (phones on bad networks do): nobody to answer, nothing broke.
            log.info("client disconnected")
            return web.Response(status=499)
        except UnicodeDecodeError:
            return problem_response(BadRequest("Request is not valid UTF-8"), request_id)
        except Exception:
            log.exception("unhandled error")
            return problem_response(
                Problem(f"Something went wrong on our side; quote request id {request_id}"), request_id
            )

    return [request_context, *build_auth_middlewares()]
