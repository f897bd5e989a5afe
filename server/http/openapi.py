"""/openapi.json built from the declared routes and their pydantic models."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from schemas.common import ProblemDetail
from server.http.api import Operation

_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")
_STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 204: "No content", 206: "Partial content",
                304: "Not modified"}


_SPECS: dict[tuple[str, tuple[tuple[str, str], ...]], bytes] = {}


def spec_bytes(operations: list[Operation], version: str) -> bytes:
    """/openapi.json's body. The spec follows from the routes in the code, so a process builds it once per set of
    routes: tests create an application per test, and building it took 0.1-0.3 s of each."""
    key = (version, tuple((op.method, op.path) for op in operations))
    if key not in _SPECS:
        _SPECS[key] = json.dumps(build_spec(operations, version)).encode()
    return _SPECS[key]


def build_spec(operations: list[Operation], version: str) -> dict[str, Any]:
    models: set[type[BaseModel]] = {ProblemDetail}
    for op in operations:
        for model in (op.body, op.query, op.response):
            if model is not None:
                models.add(model)
    ordered = sorted(models, key=lambda m: m.__name__)
    keyed, definitions = models_json_schema(
        [(m, "validation" if m in {op.body for op in operations} else "serialization") for m in ordered],
        ref_template="#/components/schemas/{model}",
    )
    refs = {model: schema for (model, _mode), schema in keyed.items()}
    paths: dict[str, dict[str, Any]] = {}
    problem_ref = refs[ProblemDetail]
    for op in operations:
        path = _PARAM.sub(lambda m: "{" + m.group(1) + "}", op.path)
        entry: dict[str, Any] = {
            "tags": [op.tag],
            "summary": op.summary,
            "operationId": f"{op.tag}_{op.handler.__name__}",
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in _PARAM.findall(op.path)
            ],
            "responses": {},
        }
        if op.roles is not None:
            entry["security"] = [{"bearerAuth": []}]
            entry["description"] = "Roles: " + ", ".join(sorted(op.roles))
        if op.query is not None:
            entry["parameters"] += _query_parameters(op.query)
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {ct: {"schema": refs[op.body]} for ct in op.body_content_types},
            }
        elif op.raw_body:
            entry["requestBody"] = {"required": True, "content": {ct: {"schema": {}} for ct in op.body_content_types}}
        success: dict[str, Any] = {"description": _STATUS_TEXT.get(op.status, "Success")}
        if op.response is not None:
            success["content"] = {op.response_content_type: {"schema": refs[op.response]}}
        elif op.response_content_type != "application/json":
            success["content"] = {op.response_content_type: {"schema": {"type": "string", "format": "binary"}}}
        entry["responses"][str(op.status)] = success
        problem = {"content": {"application/problem+json": {"schema": problem_ref}}}
        codes = {400: "Bad request", 422: "Validation failed", 503: "Database unavailable",
                 500: "Internal error", 413: "Body too large", 415: "Unsupported media type"}
        if op.roles is not None:
            codes.update({401: "Not authenticated", 403: "Role or scope forbids it"})
        if "{" in op.path:
            codes[404] = "Not found or outside the caller's scope"
        if op.method in ("POST", "PUT", "PATCH", "DELETE"):
            # Duplicates, stale states and illegal transitions.
            codes[409] = "Conflicts with the current state"
        if op.body is not None or op.raw_body:
            codes[408] = "Request body arrived too slowly"
        codes.update(op.extra_responses)
        for code, text in codes.items():
            if 200 <= code < 400:
                entry["responses"][str(code)] = {"description": text}
            else:
                entry["responses"][str(code)] = {"description": text, **problem}
        paths.setdefault(path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "branch-audit API", "version": version,
                 "description": "Bank branch service audits, mystery shopping, rectifications and compliance."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        prop.pop("title", None)
        params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    return params
