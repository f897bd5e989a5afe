"""problem+json also for errors aiohttp answers before routing (request line or headers too long,
malformed HTTP), which never reach the middleware."""

from __future__ import annotations

import json
from http import HTTPStatus

from aiohttp import web, web_protocol, web_server
from aiohttp.web_request import BaseRequest

from server.errors import PROBLEM_BASE


class ProblemRequestHandler(web_protocol.RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # The parent logs and refuses when part of a response was already sent; keep both behaviours.
        super().handle_error(request, status, exc, message)
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        if status >= 500:
            detail = "The server could not handle this request"
        else:
            reason = getattr(exc, "message", None) or message or phrase
            detail = f"The request could not be parsed: {str(reason)[:200]}"
        body = {"type": PROBLEM_BASE + ("bad-request" if status < 500 else "internal"), "title": phrase,
                "status": status, "detail": detail}
        response = web.Response(status=status, text=json.dumps(body), content_type="application/problem+json")
        response.force_close()
        return response


def use_problem_json_for_protocol_errors() -> None:
    """Make aiohttp's low-level server build ProblemRequestHandler connections (idempotent)."""
    web_server.RequestHandler = ProblemRequestHandler  # type: ignore[attr-defined]
