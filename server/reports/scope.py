"""Which branches and regions a report or export may cover for the caller (404 outside their scope)."""

from __future__ import annotations

from typing import Any

from server.context import Services
from server.db import Doc
from server.errors import NotFound
from server.http import authz


async def visible_branch(services: Services, who: authz.Principal, branch_id: str) -> Doc:
    """The branch, if the caller's scope covers it; 404 otherwise."""
    branch = await services.db.branches.find_one(
        {"_id": branch_id}, {"code": 1, "name": 1, "region_id": 1, "timezone": 1}
    )
    if branch is None:
        raise NotFound("Branch not found")
    authz.ensure_branch_visible(who, branch["_id"], branch.get("region_id"))
    return branch


async def visible_region(services: Services, who: authz.Principal, region_id: str) -> Doc:
    """The region, if the caller sees all of it (a branch head sees only their branch); 404 otherwise."""
    if who.role == authz.BRANCH_HEAD or (who.role == authz.REGIONAL_MANAGER and region_id != who.region_id):
        raise NotFound("Region not found")
    region = await services.db.regions.find_one({"_id": region_id}, {"code": 1, "name": 1})
    if region is None:
        raise NotFound("Region not found")
    return region


async def scope_filter(
    services: Services, who: authz.Principal, branch_id: str | None, region_id: str | None
) -> dict[str, Any]:
    """The caller's branch scope narrowed by the requested branch and region (each checked first)."""
    scope = authz.branch_scope_filter(who)
    if branch_id:
        await visible_branch(services, who, branch_id)
        scope = {**scope, "branch_id": branch_id}
    if region_id:
        await visible_region(services, who, region_id)
        scope = {**scope, "region_id": region_id}
    return scope
