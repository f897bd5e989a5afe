"""Rules for changing a person: which scope a role needs, which changes end their sessions, where a
branch head's headship goes, and that the organisation keeps one active admin. Plain and I/O-free."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ADMIN = "admin"
BRANCH_HEAD = "branch_head"
REGIONAL_MANAGER = "regional_manager"

# A change of any of these ends every session: what the person may see or do has changed.
SESSION_ENDING_FIELDS = frozenset({"role", "region_id", "branch_id", "active"})


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str


def is_active(user: Mapping[str, Any]) -> bool:
    return user.get("active", True) is not False


def changed_fields(user: Mapping[str, Any], changes: Mapping[str, Any]) -> list[str]:
    """The names of the fields `changes` really changes, in a stable order."""
    current = {**user, "active": is_active(user)}
    return sorted(name for name, value in changes.items() if current.get(name) != value)


def scope_problems(user: Mapping[str, Any]) -> list[FieldProblem]:
    """A role that works within a scope needs that scope."""
    problems: list[FieldProblem] = []
    if user.get("role") == BRANCH_HEAD and not user.get("branch_id"):
        problems.append(FieldProblem("branch_id", "a branch head needs branch_id"))
    if user.get("role") == REGIONAL_MANAGER and not user.get("region_id"):
        problems.append(FieldProblem("region_id", "a regional manager needs region_id"))
    return problems


def ends_sessions(changed: list[str]) -> bool:
    return any(name in SESSION_ENDING_FIELDS for name in changed)


def headed_branch(user: Mapping[str, Any]) -> str | None:
    """The branch this person is head of, if they are an active branch head."""
    if user.get("role") == BRANCH_HEAD and is_active(user) and user.get("branch_id"):
        return str(user["branch_id"])
    return None


def head_move(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(branch that loses this head, branch that gains them); (None, None) when headship did not move."""
    left, joined = headed_branch(before), headed_branch(after)
    if left == joined:
        return None, None
    return left, joined


def last_admin_problem(
    before: Mapping[str, Any], after: Mapping[str, Any], other_active_admins: int
) -> FieldProblem | None:
    """The last active admin can be neither deactivated nor given another role."""
    if before.get("role") != ADMIN or not is_active(before) or other_active_admins > 0:
        return None
    if not is_active(after):
        return FieldProblem("active", "the last active admin cannot be deactivated")
    if after.get("role") != ADMIN:
        return FieldProblem("role", "the last active admin cannot be given another role")
    return None
