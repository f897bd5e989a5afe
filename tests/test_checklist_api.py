"""The checklists API through a real HTTP client: language negotiation, ETag/304, gzip, admin upload."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from aiohttp import ClientSession
from multidict import CIMultiDict

from server.checklists.publishing import publish_shipped
from server.context import Services
from tests.conftest import Api, assert_problem, reconfigure

SHIPPED = Path(__file__).resolve().parents[1] / "checklists"
BRANCH = "/api/v1/checklists/branch-service"
YAML = {"Content-Type": "application/yaml"}


@pytest.fixture
async def published(services: Services, api: Api) -> Api:
    reconfigure(services, checklists_dir=SHIPPED)
    await publish_shipped(services)
    return api


async def raw_get(api: Api, path: str, who: str,
                  headers: dict[str, str]) -> tuple[int, CIMultiDict[str], bytes]:
    """GET without the client's automatic decompression, to see exactly what went over the wire."""
    async with ClientSession(auto_decompress=False) as session:
        token = await api.token(who)
        async with session.get(api.url(path), headers={"Authorization": f"Bearer {token}", **headers}) as resp:
            return resp.status, resp.headers.copy(), await resp.read()


async def test_list_shows_current_versions_to_every_role(published: Api) -> None:
    for role in ("inspector", "mystery_shopper", "branch_head", "compliance"):
        listing = await published.json("GET", "/api/v1/checklists?lang=en", role, expect=200)
        assert [(c["key"], c["version"]) for c in listing] == [
            ("branch-service", 1), ("mystery-call", 1), ("mystery-visit", 1)]
    assert listing[0]["title"] == "Branch service audit"
    assert listing[0]["languages"] == ["zh-CN", "en", "es"]
    resp = await published.call("GET", "/api/v1/checklists")
    assert resp.status == 401


async def test_served_document_carries_only_the_requested_language(published: Api) -> None:
    doc = await published.json("GET", BRANCH + "?lang=es", "inspector", expect=200)
    assert (doc["key"], doc["version"], doc["language"]) == ("branch-service", 1, "es")
    assert doc["title"] == "Auditoría de calidad de servicio en sucursal"
    items = [i for s in doc["sections"] for i in s["items"]]
    assert len(items) >= 40
    triage = next(i for i in items if i["id"] == "fac_queue_manual_triage")
    assert triage["show_if"] == {"item": "fac_queue_machine", "equals": False}
    wait = next(i for i in items if i["id"] == "queue_wait_minutes")
    assert (wait["type"], wait["pass_rule"], wait["unit"]) == ("number", "<= 10", "minutes")
    cash = next(i for i in items if i["id"] == "counter_cash_secured")
    assert cash["critical"] is True and cash["photo"] == {"policy": "required_on_fail", "min": 1, "max": 5}
    assert "guidance" not in next(i for i in items if i["id"] == "env_exterior_clean")
    text = json.dumps(doc, ensure_ascii=False)
    assert "网点" not in text and "Branch service audit" not in text


@pytest.mark.parametrize(("query", "accept", "expected"), [
    ("", "es-MX,es;q=0.9", "es"),
    ("", "fr-FR, en;q=0.7, zh;q=0.9", "zh-CN"),
    ("", "zh-Hans-CN", "zh-CN"),
    ("", "de, fr;q=0.5", "zh-CN"),
    ("", "en;q=0, es;q=0.1", "es"),
    ("", "*", "zh-CN"),
    ("?lang=en", "es", "en"),
    ("?lang=fr", "es", "es"),
    ("?lang=zh", "", "zh-CN"),
])
async def test_language_negotiation_and_fallback(published: Api, query: str, accept: str, expected: str) -> None:
    headers = {"Accept-Language": accept} if accept else {}
    resp = await published.call("GET", BRANCH + query, "inspector", headers=headers)
    body = await resp.json()
    assert resp.status == 200
    assert body["language"] == expected and resp.headers["Content-Language"] == expected


async def test_mystery_call_falls_back_to_its_default_language(published: Api) -> None:
    doc = await published.json("GET", "/api/v1/checklists/mystery-call", "mystery_shopper", expect=200,
                               headers={"Accept-Language": "pt-BR"})
    assert doc["language"] == "zh-CN" and doc["channel"] == "phone"
    assert doc["title"] == "神秘客户电话暗访"


async def test_if_none_match_gives_304(published: Api) -> None:
    first = await published.call("GET", BRANCH + "?lang=en", "inspector", headers={"Accept-Encoding": "identity"})
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert first.headers["Cache-Control"] == "private, max-age=60"
    assert first.headers["Vary"] == "Accept-Language, Accept-Encoding"

    again = await published.call("GET", BRANCH + "?lang=en", "inspector",
                                 headers={"If-None-Match": etag, "Accept-Encoding": "identity"})
    assert again.status == 304
    assert again.headers["ETag"] == etag and await again.read() == b""
    weak = await published.call("GET", BRANCH + "?lang=en", "inspector",
                                headers={"If-None-Match": f'"other", W/{etag}', "Accept-Encoding": "identity"})
    assert weak.status == 304
    other_language = await published.call("GET", BRANCH + "?lang=es", "inspector",
                                          headers={"If-None-Match": etag, "Accept-Encoding": "identity"})
    assert other_language.status == 200 and other_language.headers["ETag"] != etag


async def test_gzip_when_accepted(published: Api) -> None:
    status, headers, body = await raw_get(published, BRANCH + "?lang=en", "inspector",
                                          {"Accept-Encoding": "gzip, deflate"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    plain_status, plain_headers, plain = await raw_get(published, BRANCH + "?lang=en", "inspector",
                                                       {"Accept-Encoding": "gzip;q=0, identity"})
    assert plain_status == 200 and "Content-Encoding" not in plain_headers
    assert gzip.decompress(body) == plain
    assert len(body) < len(plain) / 3
    assert headers["ETag"] != plain_headers["ETag"]
    # The gzip tag revalidates too: a cache may hold either representation.
    status, _, _ = await raw_get(published, BRANCH + "?lang=en", "inspector",
                                 {"Accept-Encoding": "gzip", "If-None-Match": headers["ETag"]})
    assert status == 304


async def test_a_new_version_leaves_the_old_one_served_unchanged(published: Api) -> None:
    v1_before = await published.json("GET", BRANCH + "/versions/1?lang=en", "inspector", expect=200)
    source = (SHIPPED / "branch-service.yaml").read_text(encoding="utf-8")
    changed = source.replace("The entrance and façade are clean, with no litter, graffiti or stray posters",
                             "The entrance, façade and steps are clean, with no litter or graffiti")
    created = await published.json("POST", "/api/v1/checklists", "admin", expect=201, data=changed.encode(),
                                   headers=YAML)
    assert (created["key"], created["version"], created["created"]) == ("branch-service", 2, True)

    current = await published.json("GET", BRANCH + "?lang=en", "inspector", expect=200)
    assert current["version"] == 2
    assert current["sections"][0]["items"][0]["text"].startswith("The entrance, façade and steps")
    v1_resp = await published.call("GET", BRANCH + "/versions/1?lang=en", "inspector")
    assert v1_resp.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    assert await v1_resp.json() == v1_before
    versions = await published.json("GET", BRANCH + "/versions", "inspector", expect=200)
    assert [(v["version"], v["current"]) for v in versions] == [(1, False), (2, True)]
    missing = await published.call("GET", BRANCH + "/versions/3", "inspector")
    assert_problem(missing, await missing.json(), 404)


async def test_posting_the_same_definition_is_200_unchanged(published: Api) -> None:
    source = (SHIPPED / "mystery-call.yaml").read_bytes()
    body = await published.json("POST", "/api/v1/checklists", "admin", expect=200, data=source, headers=YAML)
    assert (body["version"], body["created"]) == (1, False)


async def test_json_definitions_are_accepted(published: Api, services: Services) -> None:
    doc = {"key": "night-check", "title": {"zh-CN": "夜间检查", "en": "Night check", "es": "Revisión nocturna"},
           "sections": [{"id": "atm", "title": {"zh-CN": "自助", "en": "ATM", "es": "Cajero"},
                         "items": [{"id": "atm_lit", "type": "yes_no",
                                    "text": {"zh-CN": "照明正常", "en": "Lit", "es": "Iluminado"}}]}]}
    body = await published.json("POST", "/api/v1/checklists", "admin", expect=201, json=doc)
    assert (body["key"], body["version"]) == ("night-check", 1)
    resp = await published.call("POST", "/api/v1/checklists", "admin", json=doc)
    assert resp.status == 200
    assert resp.headers["Location"] == "/api/v1/checklists/night-check/versions/1"


async def test_only_admins_publish(published: Api) -> None:
    source = (SHIPPED / "mystery-call.yaml").read_bytes()
    for role in ("inspector", "compliance"):
        resp = await published.call("POST", "/api/v1/checklists", role, data=source, headers=YAML)
        assert_problem(resp, await resp.json(), 403)


async def test_invalid_definition_is_422_with_every_problem(published: Api, services: Services) -> None:
    source = (SHIPPED / "mystery-call.yaml").read_text(encoding="utf-8")
    bad = (source.replace("type: yes_no", "type: tickbox", 1)
           .replace("weight: 3", "weight: -3", 1)
           .replace("show_if: {item: mc_first_contact_resolution", "show_if: {item: mc_ghost"))
    resp = await published.call("POST", "/api/v1/checklists", "admin", data=bad.encode(), headers=YAML)
    body = await resp.json()
    assert_problem(resp, body, 422)
    lines = bad.splitlines()
    found = {tuple(e["loc"][-1:]): e for e in body["errors"]}
    assert set(found) == {("type",), ("weight",), ("item",)}
    for error in body["errors"]:
        assert error["loc"][0] == "body" and error["msg"] and isinstance(error["line"], int)
    assert "tickbox" in lines[found[("type",)]["line"] - 1]
    assert "-3" in lines[found[("weight",)]["line"] - 1]
    assert "mc_ghost" in lines[found[("item",)]["line"] - 1]
    assert await services.db.checklist_versions.count_documents({"key": "mystery-call"}) == 1


async def test_malformed_yaml_is_422_with_the_line(published: Api) -> None:
    broken = b"key: broken\ntitle: {en: Broken\nsections: []\n"
    resp = await published.call("POST", "/api/v1/checklists", "admin", data=broken, headers=YAML)
    body = await resp.json()
    assert_problem(resp, body, 422)
    (error,) = body["errors"]
    assert error["loc"] == ["body"] and error["msg"].startswith("YAML syntax error") and error["line"] == 3


async def test_other_content_types_are_415(published: Api) -> None:
    resp = await published.call("POST", "/api/v1/checklists", "admin", data=b"key: x",
                                headers={"Content-Type": "text/plain"})
    assert_problem(resp, await resp.json(), 415)


async def test_unknown_checklist_is_404(published: Api) -> None:
    for path in ("/api/v1/checklists/nope", "/api/v1/checklists/nope/versions",
                 "/api/v1/checklists/nope/versions/1"):
        resp = await published.call("GET", path, "inspector")
        assert_problem(resp, await resp.json(), 404)


async def test_openapi_describes_the_checklist_routes(published: Api) -> None:
    spec = await published.json("GET", "/openapi.json", expect=200)
    paths = spec["paths"]
    assert set(paths["/api/v1/checklists"]) == {"get", "post"}
    post = paths["/api/v1/checklists"]["post"]
    assert "application/yaml" in post["requestBody"]["content"]
    assert {"200", "201", "403", "422"} <= set(post["responses"])
    get_one = paths["/api/v1/checklists/{key}/versions/{version}"]["get"]
    assert "304" in get_one["responses"]
    assert "ServedChecklist" in json.dumps(get_one["responses"]["200"])
