"""The web app (built from web/ into server/static/app) served under /app/: hashed assets cached for good,
index.html and the service worker revalidated on every load, deep links answered with index.html, and a
Content-Security-Policy that allows no inline script and no other origin."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from server.errors import NotFound, ServiceUnavailable
from server.http.api import ApiRouter, match_info

router = ApiRouter("webapp")

APP_PREFIX = "/app/"
# Vite names every file under assets/ by its content hash, so a URL there never changes meaning.
IMMUTABLE = "public, max-age=31536000, immutable"
# index.html, the service worker, the manifest and icons: always revalidated (ETag), so an update is seen.
REVALIDATE = "no-cache"
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "worker-src 'self'",
        "manifest-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}
COMPRESSIBLE = frozenset({".html", ".js", ".mjs", ".css", ".json", ".webmanifest", ".svg", ".txt"})


def app_dir() -> Path:
    """Where `make web` (cd web && npm ci && npm run build) puts the built app."""
    return Path(__file__).resolve().parent.parent / "static" / "app"


@dataclass(frozen=True)
class BuiltFile:
    """One file of the build, read once: the app is small (about 0.5 MB), and answering from memory never
    leaves a file handle open when a phone drops the connection part-way (as sendfile could)."""

    body: bytes
    etag: str
    content_type: str


# Keyed by path, size and mtime, so a rebuild (`make web`) under a running server is picked up.
_built_files: dict[tuple[Path, int, int], BuiltFile] = {}


def _built_file(path: Path) -> BuiltFile:
    stat = path.stat()
    key = (path, stat.st_size, stat.st_mtime_ns)
    cached = _built_files.get(key)
    if cached is None:
        body = path.read_bytes()
        cached = BuiltFile(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
                           CONTENT_TYPES.get(path.suffix, "application/octet-stream"))
        _built_files[key] = cached
    return cached


def _file_response(request: web.Request, path: Path, cache_control: str) -> web.Response:
    built = _built_file(path)
    headers = {**SECURITY_HEADERS, "Cache-Control": cache_control, "ETag": built.etag}
    if built.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    response = web.Response(body=built.body, headers={**headers, "Content-Type": built.content_type})
    if path.suffix in COMPRESSIBLE:
        response.enable_compression()  # gzip when the browser accepts it: the field bundle on 3G
    return response


def resolve(root: Path, tail: str) -> Path | None:
    """The built file a URL tail names, or None (never a path outside the build folder)."""
    if not tail or "\x00" in tail or "\\" in tail:
        return None
    candidate = (root / tail).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


@router.get("/", summary="The web app lives under /app/", roles=None, response_content_type="text/html",
            extra_responses={302: "Redirect to /app/"})
async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(APP_PREFIX)


@router.get("/app", summary="The web app lives under /app/", roles=None, response_content_type="text/html",
            extra_responses={302: "Redirect to /app/"})
async def app_without_slash(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(APP_PREFIX)


@router.get("/app/{tail:.*}", summary="The web app: its files, and index.html for its own routes", roles=None,
            response_content_type="text/html",
            extra_responses={404: "A missing asset", 503: "The web app was not built (run make web)"})
async def web_app(request: web.Request) -> web.StreamResponse:
    root_dir = app_dir().resolve()
    index = root_dir / "index.html"
    if not index.is_file():
        raise ServiceUnavailable("The web app is not built; run `make web`")
    tail = match_info(request, "tail")
    found = resolve(root_dir, tail)
    if found is not None:
        hashed = found.parent == root_dir / "assets"
        return _file_response(request, found, IMMUTABLE if hashed else REVALIDATE)
    if tail.startswith("assets/") or "." in tail.rsplit("/", 1)[-1]:
        # A file the build does not have (an old hash after an update): say so instead of sending HTML.
        raise NotFound("No such file in the web app")
    return _file_response(request, index, REVALIDATE)  # a route of the app itself (/app/visits/...)
