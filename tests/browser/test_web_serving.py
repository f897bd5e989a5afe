"""GET / and /app/...: the built web app with its cache headers, its Content-Security-Policy and deep links."""

from __future__ import annotations

import re

import pytest

from server.http.webapp import app_dir
from tests.conftest import Api

pytestmark = pytest.mark.skipif(not (app_dir() / "index.html").is_file(), reason="web app not built (make web)")


async def test_root_redirects_to_the_app(api: Api) -> None:
    async with api.session.get(api.url("/"), allow_redirects=False) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == "/app/"


async def test_index_is_revalidated_and_allows_no_inline_script(api: Api) -> None:
    resp = await api.call("GET", "/app/")
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-cache"
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "http" not in csp  # no other origin
    html = await resp.text()
    assert "<script>" not in html and re.search(r'<script type="module"[^>]* src="/app/assets/', html)


async def test_hashed_assets_are_immutable_and_the_service_worker_is_not(api: Api) -> None:
    html = await (await api.call("GET", "/app/")).text()
    asset = re.search(r'src="(/app/assets/[^"]+\.js)"', html)
    assert asset
    resp = await api.call("GET", asset.group(1))
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert resp.headers["Content-Type"].startswith("text/javascript")
    sw = await api.call("GET", "/app/sw.js")
    assert sw.status == 200 and sw.headers["Cache-Control"] == "no-cache"
    manifest = await api.call("GET", "/app/manifest.webmanifest")
    assert manifest.headers["Content-Type"] == "application/manifest+json"


async def test_deep_links_get_the_app_and_missing_files_get_404(api: Api) -> None:
    deep = await api.call("GET", "/app/audits/123/review")
    assert deep.status == 200 and "text/html" in deep.headers["Content-Type"]
    missing = await api.call("GET", "/app/assets/gone-abc123.js")
    assert missing.status == 404 and missing.content_type == "application/problem+json"
    outside = await api.call("GET", "/app/%2e%2e/%2e%2e/pyproject.toml")
    assert outside.status == 404


async def test_a_revalidated_index_is_304_and_scripts_go_gzipped(api: Api) -> None:
    first = await api.call("GET", "/app/")
    again = await api.call("GET", "/app/", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304 and again.headers["Cache-Control"] == "no-cache"
    asset = re.search(r'src="(/app/assets/[^"]+\.js)"', await first.text())
    assert asset
    script = await api.call("GET", asset.group(1), headers={"Accept-Encoding": "gzip"})
    assert script.status == 200 and script.headers["Content-Encoding"] == "gzip"
