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
from server.keys import CURRENT_USER, PRINCIPAL, SERVICES
from server.security import decode_access_token


async def authenticate(request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Send Authorization: Bearer <access_token>", headers={"WWW-Authenticate": "Bearer"})
    services = request.app[SERVICES]
    claims = decode_access_token(services.jwt_secret, token.strip(), services.clock.now())
    if claims is None:
        raise Unauthorized("Access token is invalid or expired",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    # One round trip: revoked sessions are listed on the user for as long as their access tokens could live.
    user = await services.db.users.find_one({"_id": claims["sub"]}, {"password_hash": 0})
    revoked = {entry["sid"] for entry in (user or {}).get("revoked_sessions", [])}
    if user is None or not user.get("active", True) or claims["sid"] in revoked:
        raise Unauthorized("Session is no longer valid", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    request[CURRENT_USER] = user
    return principal_from_user(user, session_id=claims["sid"])


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
