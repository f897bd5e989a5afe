"""Checklists as phones receive them: one language, pre-rendered bytes and their gzip, strong ETags.

A version never changes, so each (key, version, language) is rendered once per process and every later
request only negotiates, compares ETags and hands back bytes already in memory.
"""

from __future__ import annotations

import gzip
import hashlib
import time
from dataclasses import dataclass
from functools import lru_cache

from aiohttp import web

from schemas.checklist import Checklist, Item, Language
from schemas.checklist_api import (
    ServedChecklist,
    ServedItem,
    ServedOption,
    ServedSection,
    ServedShowIf,
)
from server.context import Services
from server.storage import checklists as store

# Another process may publish; a pointer older than this is re-read. Local publishes forget it at once.
CURRENT_TTL_S = 1.0
# Cached renderings: 3 languages per version; old versions are rarely asked for once audits move on.
MAX_PREPARED_VERSIONS = 256
CACHE_CURRENT = "private, max-age=60"
CACHE_VERSION = "private, max-age=31536000, immutable"
VARY = "Accept-Language, Accept-Encoding"

SUPPORTED: tuple[Language, ...] = ("zh-CN", "en", "es")


@dataclass(frozen=True)
class Rendering:
    """One language of one version, ready to send."""

    body: bytes
    gzipped: bytes
    etag: str
    etag_gzip: str


@dataclass(frozen=True)
class Prepared:
    default_language: Language
    renderings: dict[str, Rendering]


def normalise_language(tag: str) -> Language | None:
    """`zh`, `zh-CN`, `zh-Hans` -> zh-CN; `es-MX` -> es; `en-GB` -> en; anything else None."""
    primary = tag.strip().split("-")[0].split("_")[0].lower()
    if primary == "zh":
        return "zh-CN"
    if primary == "en":
        return "en"
    if primary == "es":
        return "es"
    return None


@lru_cache(maxsize=512)
def accepted_languages(header: str) -> tuple[Language | None, ...]:
    """Supported languages in an Accept-Language header by preference (q-values); None stands for `*`."""
    ranked: list[tuple[float, int, Language | None]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag:
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        language = None if tag == "*" else normalise_language(tag)
        if language is None and tag != "*":
            continue
        ranked.append((-quality, position, language))
    return tuple(language for _, _, language in sorted(ranked))


def negotiate_language(requested: str | None, accept_language: str | None, default: Language) -> Language:
    """`?lang=` first, then Accept-Language, then the checklist's default language."""
    if requested:
        chosen = normalise_language(requested)
        if chosen is not None:
            return chosen
    if accept_language:
        for language in accepted_languages(accept_language[:500]):
            return language or default
    return default


def accepts_gzip(header: str | None) -> bool:
    if not header:
        return False
    # Phones and browsers send a handful of distinct headers: each is parsed once, not on every request.
    return _gzip_allowed_cached(header) if len(header) <= 200 else _gzip_allowed(header)


def _gzip_allowed(header: str) -> bool:
    allowed: dict[str, float] = {}
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        quality = 1.0
        name, _, value = params.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
        allowed[coding.strip().lower()] = quality
    if "gzip" in allowed:
        return allowed["gzip"] > 0
    return allowed.get("*", 0.0) > 0


_gzip_allowed_cached = lru_cache(maxsize=256)(_gzip_allowed)


def served_item(item: Item, language: str) -> ServedItem:
    condition = item.show_if
    return ServedItem(
        id=item.id,
        type=item.type,
        text=item.text.in_language(language),
        guidance=item.guidance.in_language(language) if item.guidance else None,
        weight=item.weight,
        severity=item.severity,
        critical=item.critical,
        na_allowed=item.na_allowed,
        required=item.required,
        scored=item.scored,
        photo=item.photo,
        show_if=ServedShowIf.model_validate({"item": condition.item, "equals": condition.equals,
                                             "in": condition.in_, "failed": condition.failed})
        if condition else None,
        options=[ServedOption(id=o.id, text=o.text.in_language(language), passing=o.passing)
                 for o in item.options] if item.options else None,
        scale=item.scale,
        pass_rule=str(item.rule()) if item.pass_rule else None,
        unit=item.unit,
        applies_to=item.applies_to,
    )


def served_checklist(checklist: Checklist, version: int, digest: str, language: Language) -> ServedChecklist:
    """The document a phone gets: every text in `language` only."""
    return ServedChecklist(
        key=checklist.key,
        version=version,
        content_hash=digest,
        language=language,
        default_language=checklist.default_language,
        languages=list(SUPPORTED),
        channel=checklist.channel,
        title=checklist.title.in_language(language),
        description=checklist.description.in_language(language) if checklist.description else None,
        sections=[
            ServedSection(id=s.id, title=s.title.in_language(language), weight=s.weight,
                          items=[served_item(i, language) for i in s.items])
            for s in checklist.sections
        ],
        grade_bands=checklist.grade_bands,
        due_policy=checklist.due_policy,
    )


def render(checklist: Checklist, version: int, language: Language) -> Rendering:
    """Bytes and gzip of one language; ETags are hashes of exactly the bytes sent."""
    document = served_checklist(checklist, version, store.content_hash(checklist), language)
    body = document.model_dump_json(by_alias=True, exclude_none=True).encode("utf-8")
    # mtime=0 keeps the gzip bytes (and so their ETag) identical across processes and restarts.
    gzipped = gzip.compress(body, compresslevel=9, mtime=0)
    return Rendering(body, gzipped, _etag(body), _etag(gzipped))


def _etag(payload: bytes) -> str:
    return '"' + hashlib.sha256(payload).hexdigest()[:32] + '"'


async def prepared(services: Services, key: str, version: int) -> Prepared | None:
    """Every language of a version, rendered on first use and kept for the life of the process."""
    cache = services.shared.prepared_checklists
    found = cache.get((key, version))
    if found is not None:
        return found
    checklist = await store.get_version(services.db, key, version)
    if checklist is None:
        return None
    found = Prepared(checklist.default_language,
                     {language: render(checklist, version, language) for language in SUPPORTED})
    if len(cache) >= MAX_PREPARED_VERSIONS:
        cache.pop(next(iter(cache)))
    cache[(key, version)] = found
    return found


async def current_version(services: Services, key: str) -> int | None:
    """The current version number, re-read from the database at most every CURRENT_TTL_S."""
    cache = services.shared.current_checklists
    now = time.monotonic()
    entry = cache.get(key)
    if entry is not None and entry[0] > now:
        return entry[1]
    claim = None
    if entry is not None:
        # One request re-reads; the requests arriving meanwhile keep the version read a moment ago (at most one
        # round trip older than CURRENT_TTL_S) instead of all asking the database at once, each on a pooled
        # connection of its own (32 phones: 32 reads a second, not 1).
        claim = cache[key] = (now + CURRENT_TTL_S, entry[1])
    version = await store.current_version(services.db, key)
    if cache.get(key) is claim:  # else a local publish forgot it meanwhile (forget_current), or another read won
        if version is not None:
            cache[key] = (time.monotonic() + CURRENT_TTL_S, version)
        else:
            cache.pop(key, None)
    return version


def forget_current(services: Services, key: str) -> None:
    """Called after a local publish, so this process serves the new version immediately."""
    services.shared.current_checklists.pop(key, None)


def _matches(if_none_match: str, rendering: Rendering) -> bool:
    if if_none_match in (rendering.etag_gzip, rendering.etag):  # what a client that kept our tag sends
        return True
    if if_none_match.strip() == "*":
        return True
    # Weak comparison (RFC 9110 13.1.2); either encoding's tag names the same content.
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return rendering.etag in tags or rendering.etag_gzip in tags


def respond(request: web.Request, prepared_version: Prepared, requested_language: str | None,
            *, immutable: bool) -> web.Response:
    """200 with the bytes (gzip when accepted) or 304 when the client already holds them."""
    language = negotiate_language(requested_language, request.headers.get("Accept-Language"),
                                  prepared_version.default_language)
    rendering = prepared_version.renderings[language]
    use_gzip = accepts_gzip(request.headers.get("Accept-Encoding"))
    headers = {
        "ETag": rendering.etag_gzip if use_gzip else rendering.etag,
        "Cache-Control": CACHE_VERSION if immutable else CACHE_CURRENT,
        "Vary": VARY,
        "Content-Language": language,
    }
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match and _matches(if_none_match, rendering):
        return web.Response(status=304, headers=headers)
    if use_gzip:
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=rendering.gzipped if use_gzip else rendering.body, headers=headers,
                        content_type="application/json")
