"""Checklists: every authenticated role reads them (one language, ETag, gzip); admins publish."""

from __future__ import annotations

from aiohttp import web

from schemas.checklist import LANGUAGES
from schemas.checklist_api import (
    ChecklistLanguageQuery,
    ChecklistList,
    ChecklistPublishOutcome,
    ChecklistVersionList,
    ServedChecklist,
)
from server.checklists import serving
from server.checklists.loading import load_text
from server.checklists.publishing import publish
from server.errors import NotFound, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from server.http import authz
from server.http.api import ApiRouter, json_response, match_info, query_of
from server.http.request_meta import actor
from server.keys import SERVICES
from server.storage import checklists as store

router = ApiRouter("checklists")
ADMIN_ONLY = frozenset({authz.ADMIN})
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
CACHING = {304: "Not modified: the If-None-Match tag matches the representation"}


@router.get("/api/v1/checklists", summary="The current version of every checklist",
            query=ChecklistLanguageQuery, response=ChecklistList)
async def list_checklists(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    q = query_of(request, ChecklistLanguageQuery)
    accept = request.headers.get("Accept-Language")
    summaries = []
    for doc in await store.list_checklists(services.db):
        language = serving.negotiate_language(q.lang, accept, doc.get("default_language", "zh-CN"))
        summaries.append({
            "key": doc["_id"],
            "version": doc["current_version"],
            "title": doc["title"].get(language) or doc["title"].get("en", doc["_id"]),
            "language": language,
            "languages": doc.get("languages", list(LANGUAGES)),
            "default_language": doc.get("default_language", "zh-CN"),
            "channel": doc["channel"],
            "updated_at": doc["updated_at"],
        })
    return json_response(ChecklistList.model_validate(summaries), headers={"Vary": "Accept-Language"})


@router.get("/api/v1/checklists/{key}", summary="The current version of a checklist, in one language",
            query=ChecklistLanguageQuery, response=ServedChecklist, extra_responses=CACHING)
async def get_current_checklist(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    key = match_info(request, "key")
    q = query_of(request, ChecklistLanguageQuery)
    version = await serving.current_version(services, key)
    found = await serving.prepared(services, key, version) if version is not None else None
    if found is None:
        raise NotFound(f"No checklist {key!r}")
    return serving.respond(request, found, q.lang, immutable=False)


@router.get("/api/v1/checklists/{key}/versions/{version:\\d+}",
            summary="One version of a checklist, in one language (immutable)", query=ChecklistLanguageQuery,
            response=ServedChecklist, extra_responses=CACHING)
async def get_checklist_version(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    key = match_info(request, "key")
    q = query_of(request, ChecklistLanguageQuery)
    found = await serving.prepared(services, key, int(match_info(request, "version")))
    if found is None:
        raise NotFound(f"No version {match_info(request, 'version')} of checklist {key!r}")
    return serving.respond(request, found, q.lang, immutable=True)


@router.get("/api/v1/checklists/{key}/versions", summary="Every published version of a checklist",
            response=ChecklistVersionList)
async def list_checklist_versions(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    key = match_info(request, "key")
    current = await store.current_version(services.db, key)
    if current is None:
        raise NotFound(f"No checklist {key!r}")
    versions = [
        {"key": doc["key"], "version": doc["version"], "content_hash": doc["content_hash"],
         "published_at": doc["published_at"], "published_by": doc.get("published_by"),
         "current": doc["version"] == current}
        for doc in await store.list_versions(services.db, key)
    ]
    return json_response(ChecklistVersionList.model_validate(versions))


@router.post("/api/v1/checklists", summary="Publish a checklist definition (YAML or JSON)",
             response=ChecklistPublishOutcome, status=201, roles=ADMIN_ONLY, raw_body=True,
             body_content_types=(*YAML_TYPES, "application/json"),
             extra_responses={200: "Unchanged: equal to the current version, nothing published",
                              422: "Invalid definition: every problem with loc, msg and line"})
async def publish_checklist(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    content_type = request.content_type
    if content_type not in (*YAML_TYPES, "application/json"):
        raise UnsupportedMediaType(f"Send the definition as application/yaml or application/json, "
                                   f"not {content_type or 'no content type'}")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"Definition larger than {request.client_max_size} bytes") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        error = {"loc": ["body"], "path": "", "msg": "the definition is not UTF-8", "line": None}
        raise ValidationFailed("The definition is not UTF-8", errors=[error]) from None
    loaded = load_text(text, "body", json_body=content_type == "application/json")
    if loaded.checklist is None:
        problems = loaded.problems
        plural = "s" if len(problems) != 1 else ""
        raise ValidationFailed(
            f"The definition has {len(problems)} problem{plural}; nothing was published",
            errors=[{"loc": ["body", *p.loc], "path": p.path, "msg": p.message, "line": p.line}
                    for p in problems],
        )
    result = await publish(services, loaded.checklist, actor(request))
    outcome = ChecklistPublishOutcome(key=result.key, version=result.version, created=result.created,
                                      content_hash=result.content_hash,
                                      item_count=len(loaded.checklist.items()))
    location = f"/api/v1/checklists/{result.key}/versions/{result.version}"
    return json_response(outcome, status=201 if result.created else 200, headers={"Location": location})
