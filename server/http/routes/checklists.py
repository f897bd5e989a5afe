"""Checklists: every authenticated role reads them (one language, ETag, gzip); admins publish."""

from __future__ import annotations

from aiohttp import web

from schemas.admin import ChecklistState, ChecklistValidation, DefinitionError, OptionalReason
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
from server.errors import NotFound, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from server.http import authz
from server.http.api import ApiRouter, body_of, json_response, match_info, query_of
from server.http.request_meta import origin
from server.keys import SERVICES
from server.services import checklists as commands
from server.storage import checklists as store

router = ApiRouter("checklists")
ADMIN_ONLY = commands.ADMINS
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
            "retired": commands.is_retired(doc),
        })
    return json_response(ChecklistList.model_validate(summaries), headers={"Vary": "Accept-Language"})


@router.get("/api/v1/checklists/{key}", summary="The current version of a checklist, in one language",
            query=ChecklistLanguageQuery, response=ServedChecklist, extra_responses=CACHING)
async def get_current_checklist(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    key = match_info(request, "key")
    language = _requested_language(request)
    version = await serving.current_version(services, key)
    found = await serving.prepared(services, key, version) if version is not None else None
    if found is None:
        raise NotFound(f"No checklist {key!r}")
    return serving.respond(request, found, language, immutable=False)


@router.get("/api/v1/checklists/{key}/versions/{version:\\d+}",
            summary="One version of a checklist, in one language (immutable)", query=ChecklistLanguageQuery,
            response=ServedChecklist, extra_responses=CACHING)
async def get_checklist_version(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    key = match_info(request, "key")
    language = _requested_language(request)
    found = await serving.prepared(services, key, int(match_info(request, "version")))
    if found is None:
        raise NotFound(f"No version {match_info(request, 'version')} of checklist {key!r}")
    return serving.respond(request, found, language, immutable=True)


def _requested_language(request: web.Request) -> str | None:
    # A phone's usual request has no query string: nothing to validate, so no model is built for it.
    return query_of(request, ChecklistLanguageQuery).lang if request.query_string else None


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


async def _definition_text(request: web.Request) -> tuple[str, bool]:
    """The uploaded definition and whether it is JSON (YAML otherwise); 415, 413 or 422 when unreadable."""
    content_type = request.content_type
    if content_type not in (*YAML_TYPES, "application/json"):
        raise UnsupportedMediaType(f"Send the definition as application/yaml or application/json, "
                                   f"not {content_type or 'no content type'}")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"Definition larger than {request.client_max_size} bytes") from None
    try:
        return raw.decode("utf-8"), content_type == "application/json"
    except UnicodeDecodeError:
        error = {"loc": ["body"], "path": "", "msg": "the definition is not UTF-8", "line": None}
        raise ValidationFailed("The definition is not UTF-8", errors=[error]) from None


@router.post("/api/v1/checklists", summary="Publish a checklist definition (YAML or JSON)",
             response=ChecklistPublishOutcome, status=201, roles=ADMIN_ONLY, raw_body=True,
             body_content_types=(*YAML_TYPES, "application/json"),
             extra_responses={200: "Unchanged: equal to the current version, nothing published",
                              422: "Invalid definition: every problem with loc, msg and line"})
async def publish_checklist(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = authz.principal(request)
    text, json_body = await _definition_text(request)
    loaded = load_text(text, "body", json_body=json_body)
    if loaded.checklist is None:
        problems = loaded.problems
        plural = "s" if len(problems) != 1 else ""
        raise ValidationFailed(f"The definition has {len(problems)} problem{plural}; nothing was published",
                               errors=commands.problem_entries(problems))
    result = await commands.publish_checklist(services, who, loaded.checklist, origin(request))
    outcome = ChecklistPublishOutcome(key=result.key, version=result.version, created=result.created,
                                      content_hash=result.content_hash,
                                      item_count=len(loaded.checklist.items()))
    location = f"/api/v1/checklists/{result.key}/versions/{result.version}"
    return json_response(outcome, status=201 if result.created else 200, headers={"Location": location})


@router.post("/api/v1/checklists/validate",
             summary="Check a definition (YAML or JSON) without publishing: every problem with its line and path, "
                     "and when valid a preview in zh-CN, en and es as the phone will show it",
             response=ChecklistValidation, roles=ADMIN_ONLY, raw_body=True,
             body_content_types=(*YAML_TYPES, "application/json"))
async def validate_checklist(request: web.Request) -> web.Response:
    text, json_body = await _definition_text(request)
    checked = commands.validate_definition(authz.principal(request), text, json_body=json_body)
    checklist = checked.loaded.checklist
    return json_response(ChecklistValidation(
        valid=checklist is not None,
        key=checklist.key if checklist else None,
        item_count=len(checklist.items()) if checklist else None,
        errors=[DefinitionError.model_validate(e) for e in commands.problem_entries(checked.loaded.problems)],
        preview=checked.preview,
    ))


@router.post("/api/v1/checklists/{key}/retire",
             summary="Retire a checklist: it starts no new audits or programs; audits pinned to it finish normally",
             body=OptionalReason, response=ChecklistState, roles=ADMIN_ONLY,
             extra_responses={404: "No such checklist", 409: "Already retired"})
async def retire_checklist(request: web.Request) -> web.Response:
    body = await body_of(request, OptionalReason) if request.can_read_body else OptionalReason()
    pointer = await commands.retire_checklist(request.app[SERVICES], authz.principal(request),
                                              match_info(request, "key"), body.reason, origin(request))
    return json_response(ChecklistState.model_validate(commands.checklist_state(pointer)))


@router.post("/api/v1/checklists/{key}/restore", summary="Restore a retired checklist: new audits may start again",
             response=ChecklistState, roles=ADMIN_ONLY,
             extra_responses={404: "No such checklist", 409: "Not retired"})
async def restore_checklist(request: web.Request) -> web.Response:
    pointer = await commands.restore_checklist(request.app[SERVICES], authz.principal(request),
                                               match_info(request, "key"), origin(request))
    return json_response(ChecklistState.model_validate(commands.checklist_state(pointer)))
