"""Who may see and do what: the roles, their groups and every object-scope rule, in one I/O-free place.

Objects outside a caller's scope answer 404 (their existence must not leak), so the `can_*` rules answer
yes or no and the `*_scope` rules give the filter a listing is confined to (None: nothing at all).
Branch-side roles (branch heads and regional managers) see released audits only, and never a mystery
shopper's identity (server.domain.audit_access gives them a pseudonym)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.errors import Forbidden, NotFound

Doc = dict[str, Any]

ADMIN = "admin"
COMPLIANCE = "compliance"
REGIONAL_MANAGER = "regional_manager"
BRANCH_HEAD = "branch_head"
INSPECTOR = "inspector"
MYSTERY_SHOPPER = "mystery_shopper"
INTEGRATION = "integration"
ROLES = (ADMIN, COMPLIANCE, REGIONAL_MANAGER, BRANCH_HEAD, INSPECTOR, MYSTERY_SHOPPER, INTEGRATION)

# The role groups; every rule below and every route's `roles=` is written with these.
HEAD_OFFICE = frozenset({ADMIN, COMPLIANCE})  # review and administer the whole organisation
REVIEWERS = HEAD_OFFICE  # release, return, decide appeals
ORGANISATION_WIDE = HEAD_OFFICE | {INTEGRATION}  # read every audit (integrations follow the event feed)
FIELD_ROLES = frozenset({INSPECTOR, MYSTERY_SHOPPER})  # do audits
BRANCH_ROLES = frozenset({BRANCH_HEAD})  # do the branch's rectification work
BRANCH_SIDE = frozenset({BRANCH_HEAD, REGIONAL_MANAGER})  # see released results, never the shopper
ADMINISTRATORS = frozenset({ADMIN})  # change people, regions, branches, checklists and webhooks
PLANNERS = HEAD_OFFICE  # create, change and cancel programs and their visits

# A released object carries a release date; branch-side listings match on it.
RELEASED = {"$type": "date"}


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

    @property
    def is_branch_side(self) -> bool:
        return self.role in BRANCH_SIDE

    @property
    def is_field(self) -> bool:
        return self.role in FIELD_ROLES


def require_role(who: Principal, roles: frozenset[str] | set[str]) -> None:
    if who.role not in roles:
        raise Forbidden(f"Role {who.role} may not do this")


# --- branches -------------------------------------------------------------------------------------


def can_see_branch(who: Principal, branch_id: str, region_id: str | None) -> bool:
    """Whether the caller's scope covers a branch (not whether the role may act on it)."""
    if who.role in ORGANISATION_WIDE or who.role in FIELD_ROLES:
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


# --- audits and findings --------------------------------------------------------------------------


def can_view_audit(who: Principal, audit: Doc) -> bool:
    """Whether `who` may know this audit exists."""
    if who.role in ORGANISATION_WIDE:
        return True
    if who.role in FIELD_ROLES:
        return bool(audit.get("auditor_id") == who.user_id)
    if audit.get("status") != "released":
        return False
    if who.role == BRANCH_HEAD:
        return bool(who.branch_id and audit.get("branch_id") == who.branch_id)
    if who.role == REGIONAL_MANAGER:
        return bool(who.region_id and audit.get("region_id") == who.region_id)
    return False


def history_scope(who: Principal) -> dict[str, Any] | None:
    """The filter every audit listing of `who` is confined to; the same scope as can_view_audit."""
    if who.role in ORGANISATION_WIDE:
        return {}
    if who.role in FIELD_ROLES:
        return {"auditor_id": who.user_id}
    if who.role == BRANCH_HEAD and who.branch_id:
        return {"branch_id": who.branch_id, "status": "released"}
    if who.role == REGIONAL_MANAGER and who.region_id:
        return {"region_id": who.region_id, "status": "released"}
    return None


def finding_scope(who: Principal) -> dict[str, Any] | None:
    """Findings follow their audit: branch-side roles see those of released audits only."""
    if who.role in ORGANISATION_WIDE:
        return {}
    if who.role in FIELD_ROLES:
        return {"auditor_id": who.user_id}
    if who.role == BRANCH_HEAD and who.branch_id:
        return {"branch_id": who.branch_id, "released_at": RELEASED}
    if who.role == REGIONAL_MANAGER and who.region_id:
        return {"region_id": who.region_id, "released_at": RELEASED}
    return None


def can_appeal(who: Principal, finding: Doc) -> bool:
    """Only the branch's head appeals, and only a released finding."""
    return bool(
        who.role == BRANCH_HEAD
        and finding.get("branch_id") == who.branch_id
        and finding.get("released_at")
    )


def can_view_appeal_evidence(who: Principal, finding: Doc) -> bool:
    """Photos the branch uploaded for an appeal: the reviewers who decide it and the branch's own side;
    never the auditor whose finding is contested."""
    if who.role in REVIEWERS:
        return True
    if who.role in BRANCH_SIDE and finding.get("released_at"):
        return can_see_branch(who, finding["branch_id"], finding.get("region_id"))
    return False


def appeal_scope(who: Principal) -> dict[str, Any] | None:
    if who.role in REVIEWERS:
        return {}
    if who.role == BRANCH_HEAD and who.branch_id:
        return {"branch_id": who.branch_id}
    if who.role == REGIONAL_MANAGER and who.region_id:
        return {"region_id": who.region_id}
    return None


# --- rectifications -------------------------------------------------------------------------------


def can_view_rectification(who: Principal, rectification: Doc) -> bool:
    """Head office; the branch side in its scope; inspectors and shoppers: rectifications of their audits."""
    if who.role in HEAD_OFFICE:
        return True
    if who.role in FIELD_ROLES:
        return bool(rectification.get("inspector_id") == who.user_id)
    if who.role in BRANCH_SIDE:
        return can_see_branch(who, rectification["branch_id"], rectification.get("region_id"))
    return False


def rectification_scope_filter(who: Principal) -> dict[str, Any]:
    """The listing counterpart of can_view_rectification."""
    if who.role in FIELD_ROLES:
        return {"inspector_id": who.user_id}
    return branch_scope_filter(who)


def can_add_fix_evidence(who: Principal, rectification: Doc) -> bool:
    """"After" photos come from the branch's own head."""
    return who.role == BRANCH_HEAD and rectification.get("branch_id") == who.branch_id
