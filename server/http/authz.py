"""Authentication of every request. Who may see and do what is decided in server.domain.access
(re-exported here, so routes read `authz.COMPLIANCE`, `authz.Principal`, `authz.can_view_audit`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.domain.access import (
    ADMIN,
    BRANCH_HEAD,
    BRANCH_ROLES,
    BRANCH_SIDE,
    COMPLIANCE,
    FIELD_ROLES,
    HEAD_OFFICE,
    INSPECTOR,
    INTEGRATION,
    MYSTERY_SHOPPER,
    ORGANISATION_WIDE,
    REGIONAL_MANAGER,
    REVIEWERS,
    ROLES,
    Principal,
    appeal_scope,
    branch_scope_filter,
    can_see_branch,
    can_view_audit,
    can_view_rectification,
    ensure_branch_visible,
    finding_scope,
    history_scope,
    rectification_scope_filter,
    require_role,
)
from server.errors import Unauthorized
from server.http.authn import authenticated_user
from server.keys import CURRENT_USER, PRINCIPAL


async def authenticate(request: web.Request) -> Principal:
    """The caller, from a bearer token or a download ticket (server.http.authn), or 401."""
    user, session_id = await authenticated_user(request)
    request[CURRENT_USER] = user
    return principal_from_user(user, session_id=session_id)


def principal_from_user(user: dict[str, Any], session_id: str = "") -> Principal:
    return Principal(
        user_id=user["_id"],
        username=user["username"],
        role=user["role"],
        display_name=user.get("display_name") or user["username"],
        region_id=user.get("region_id"),
        branch_id=user.get("branch_id"),
        home_branch_id=user.get("home_branch_id"),
        language=user.get("language", "en"),
        session_id=session_id,
    )


def principal(request: web.Request) -> Principal:
    found = request.get(PRINCIPAL)
    if not isinstance(found, Principal):
        raise Unauthorized()
    return found


__all__ = [
    "ADMIN", "BRANCH_HEAD", "BRANCH_ROLES", "BRANCH_SIDE", "COMPLIANCE", "FIELD_ROLES", "HEAD_OFFICE", "INSPECTOR",
    "INTEGRATION", "MYSTERY_SHOPPER", "ORGANISATION_WIDE", "REGIONAL_MANAGER", "REVIEWERS", "ROLES", "Principal",
    "appeal_scope", "authenticate", "branch_scope_filter", "can_see_branch", "can_view_audit",
    "can_view_rectification", "ensure_branch_visible", "finding_scope", "history_scope", "principal",
    "principal_from_user", "rectification_scope_filter", "require_role",
]
