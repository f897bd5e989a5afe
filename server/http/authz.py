"""Authentication and object-scope authorization, in one place for every endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from server.errors import Forbidden, NotFound, Unauthorized
from server.keys import CURRENT_USER, PRINCIPAL, SERVICES
from server.security import decode_access_token

ADMIN = "admin"
COMPLIANCE = "compliance"
REGIONAL_MANAGER = "regional_manager"
BRANCH_HEAD = "branch_head"
INSPECTOR = "inspector"
MYSTERY_SHOPPER = "mystery_shopper"
INTEGRATION = "integration"
ROLES = (ADMIN, COMPLIANCE, REGIONAL_MANAGER, BRANCH_HEAD, INSPECTOR, MYSTERY_SHOPPER, INTEGRATION)
BRANCH_ROLES = frozenset({BRANCH_HEAD})
HEAD_OFFICE = frozenset({ADMIN, COMPLIANCE})
FIELD_ROLES = frozenset({INSPECTOR, MYSTERY_SHOPPER})


@dataclass(frozen=True)
class Principal:
    """The authenticated caller and the scope their role gives them."""

    user_id: str
    username: str
    role: str
    display_name: str
    region_id: str | None
    branch_id: str | None
    home_branch_id: str | None
    language: str
    session_id: str

    @property
    def is_head_office(self) -> bool:
        return self.role in HEAD_OFFICE

    @property
    def is_branch_staff(self) -> bool:
        return self.role in BRANCH_ROLES


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


def require_role(who: Principal, roles: frozenset[str] | set[str]) -> None:
    if who.role not in roles:
        raise Forbidden(f"Role {who.role} may not do this")


def can_see_branch(who: Principal, branch_id: str, region_id: str | None) -> bool:
    """Whether the caller's scope covers a branch (not whether the role may act on it)."""
    if who.role in (ADMIN, COMPLIANCE, INTEGRATION, INSPECTOR, MYSTERY_SHOPPER):
        return True
    if who.role == REGIONAL_MANAGER:
        return region_id is not None and region_id == who.region_id
    if who.role == BRANCH_HEAD:
        return branch_id == who.branch_id
    return False


def ensure_branch_visible(who: Principal, branch_id: str, region_id: str | None, what: str = "Branch") -> None:
    """404, not 403: another branch's objects must not even be confirmed to exist."""
    if not can_see_branch(who, branch_id, region_id):
        raise NotFound(f"{what} not found")


def branch_scope_filter(who: Principal, *, branch_field: str = "branch_id",
                        region_field: str = "region_id") -> dict[str, Any]:
    """A query filter that limits a listing to the caller's branches."""
    if who.role == BRANCH_HEAD:
        return {branch_field: who.branch_id}
    if who.role == REGIONAL_MANAGER:
        return {region_field: who.region_id}
    return {}


def can_view_rectification(who: Principal, rectification: dict[str, Any]) -> bool:
    """Branch roles: their branch or region; inspectors and shoppers: rectifications of their own audits."""
    if who.role in (INSPECTOR, MYSTERY_SHOPPER):
        return rectification.get("inspector_id") == who.user_id
    return can_see_branch(who, rectification["branch_id"], rectification.get("region_id"))


def rectification_scope_filter(who: Principal) -> dict[str, Any]:
    """The listing counterpart of can_view_rectification."""
    if who.role in (INSPECTOR, MYSTERY_SHOPPER):
        return {"inspector_id": who.user_id}
    return branch_scope_filter(who)
