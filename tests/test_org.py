"""Regions, branches and users: admin writes, scoped reads."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, assert_problem


async def _branches(api: Api, who: str) -> list[dict[str, Any]]:
    page = await api.json("GET", "/api/v1/branches?limit=200", who, expect=200)
    return list(page["items"])


async def test_demo_organisation_has_regions_branches_and_every_role(api: Api) -> None:
    regions = await api.json("GET", "/api/v1/regions", "admin", expect=200)
    assert len(regions["items"]) == 2
    branches = await _branches(api, "admin")
    assert len(branches) >= 6
    assert {b["timezone"] for b in branches} >= {"Asia/Shanghai", "Europe/Madrid"}
    users = await api.json("GET", "/api/v1/users?limit=200", "admin", expect=200)
    assert {u["role"] for u in users["items"]} >= {
        "admin", "compliance", "regional_manager", "branch_head", "inspector", "mystery_shopper"}


async def test_branch_head_sees_only_their_branch(api: Api) -> None:
    me = await api.json("GET", "/api/v1/me", "branch_head", expect=200)
    mine = await _branches(api, "branch_head")
    assert [b["id"] for b in mine] == [me["branch_id"]]
    other = next(b for b in await _branches(api, "admin") if b["id"] != me["branch_id"])
    r = await api.call("GET", f"/api/v1/branches/{other['id']}", "branch_head")
    assert_problem(r, await r.json(content_type=None), 404)
    await api.json("GET", f"/api/v1/branches/{me['branch_id']}", "branch_head", expect=200)


async def test_regional_manager_sees_only_their_region(api: Api) -> None:
    me = await api.json("GET", "/api/v1/me", "regional_manager", expect=200)
    mine = await _branches(api, "regional_manager")
    assert mine and all(b["region_id"] == me["region_id"] for b in mine)
    outside = next(b for b in await _branches(api, "admin") if b["region_id"] != me["region_id"])
    r = await api.call("GET", f"/api/v1/branches/{outside['id']}", "regional_manager")
    assert r.status == 404


async def test_only_admins_create_and_bad_input_is_refused(api: Api) -> None:
    regions = await api.json("GET", "/api/v1/regions", "admin", expect=200)
    region_id = regions["items"][0]["id"]
    branch = {"code": "SZ-FT", "name": "Shenzhen Futian", "region_id": region_id,
              "location": {"lat": 22.5431, "lon": 114.0579}, "geofence_m": 200, "timezone": "Asia/Shanghai"}
    r = await api.call("POST", "/api/v1/branches", "compliance", json=branch)
    assert_problem(r, await r.json(content_type=None), 403)
    created = await api.json("POST", "/api/v1/branches", "admin", json=branch, expect=201)
    assert created["timezone"] == "Asia/Shanghai" and created["head_user_id"] is None
    r = await api.call("POST", "/api/v1/branches", "admin", json=branch)
    assert_problem(r, await r.json(content_type=None), 409)
    bad = await api.json("POST", "/api/v1/branches", "admin", json={**branch, "code": "X1", "timezone": "Mars/Base"},
                         expect=422)
    assert bad["errors"][0]["loc"] == ["body", "timezone"]
    bad = await api.json("POST", "/api/v1/branches", "admin",
                         json={**branch, "code": "X2", "location": {"lat": 123, "lon": 0}}, expect=422)
    assert bad["errors"][0]["loc"][:3] == ["body", "location", "lat"]


async def test_create_user_sets_branch_head_and_refuses_mass_assignment(api: Api) -> None:
    admin_branch = await api.json("POST", "/api/v1/branches", "admin", expect=201, json={
        "code": "GZ-TH", "name": "Guangzhou Tianhe",
        "region_id": (await api.json("GET", "/api/v1/regions", "admin"))["items"][0]["id"],
        "location": {"lat": 23.1291, "lon": 113.2644}, "timezone": "Asia/Shanghai"})
    user = {"username": "gz.head", "password": "a-long-password-1", "role": "branch_head",
            "display_name": "Guangzhou Head", "branch_id": admin_branch["id"]}
    created = await api.json("POST", "/api/v1/users", "admin", json=user, expect=201)
    branch = await api.json("GET", f"/api/v1/branches/{admin_branch['id']}", "admin", expect=200)
    assert branch["head_user_id"] == created["id"]
    await api.login("gz.head", "a-long-password-1")
    # Fields a client must not set are refused, not silently stored.
    r = await api.call("POST", "/api/v1/users", "admin",
                       json={**user, "username": "sneaky", "password_hash": "x", "active": False})
    body = await r.json(content_type=None)
    assert_problem(r, body, 422)
    assert {tuple(e["loc"]) for e in body["errors"]} >= {("body", "password_hash")}
    r = await api.call("POST", "/api/v1/users", "admin", json={**user, "username": "nohome", "branch_id": None})
    assert r.status == 422


async def test_users_are_private_to_head_office(api: Api) -> None:
    r = await api.call("GET", "/api/v1/users", "branch_head")
    assert r.status == 403
    shopper = (await api.json("GET", "/api/v1/users?role=mystery_shopper", "admin"))["items"][0]
    r = await api.call("GET", f"/api/v1/users/{shopper['id']}", "branch_head")
    assert r.status == 404
    me = await api.json("GET", "/api/v1/me", "branch_head")
    await api.json("GET", f"/api/v1/users/{me['id']}", "branch_head", expect=200)


async def test_pagination_is_stable(api: Api) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        path = "/api/v1/users?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = await api.json("GET", path, "admin", expect=200)
        seen += [u["id"] for u in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    everyone = await api.json("GET", "/api/v1/users?limit=200", "admin")
    assert seen == [u["id"] for u in everyone["items"]]
    r = await api.call("GET", "/api/v1/users?cursor=%%%garbage", "admin")
    assert r.status == 422
    r = await api.call("GET", "/api/v1/users?limit=1000", "admin")
    assert r.status == 422
