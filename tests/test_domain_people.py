"""The rules for changing a person, without a database."""

from __future__ import annotations

from server.domain import people

HEAD = {"_id": "u1", "role": "branch_head", "branch_id": "b1", "region_id": "r1", "active": True}


def test_changed_fields_ignores_values_already_held_and_reads_missing_active_as_true() -> None:
    assert people.changed_fields(HEAD, {"branch_id": "b1", "display_name": "Li"}) == ["display_name"]
    assert people.changed_fields({"_id": "u2", "role": "inspector"}, {"active": True}) == []
    assert people.changed_fields({"_id": "u2", "role": "inspector"}, {"active": False}) == ["active"]


def test_roles_with_a_scope_need_it() -> None:
    assert [p.field for p in people.scope_problems({"role": "branch_head"})] == ["branch_id"]
    assert [p.field for p in people.scope_problems({"role": "regional_manager"})] == ["region_id"]
    assert people.scope_problems({"role": "inspector"}) == []


def test_role_scope_and_deactivation_end_sessions_other_changes_do_not() -> None:
    for name in ("role", "region_id", "branch_id", "active"):
        assert people.ends_sessions([name])
    assert not people.ends_sessions(["display_name", "email", "language", "home_branch_id"])


def test_headship_follows_the_head() -> None:
    assert people.head_move(HEAD, {**HEAD, "branch_id": "b2"}) == ("b1", "b2")
    assert people.head_move(HEAD, {**HEAD, "active": False}) == ("b1", None)
    assert people.head_move(HEAD, {**HEAD, "role": "compliance"}) == ("b1", None)
    assert people.head_move({**HEAD, "role": "inspector"}, HEAD) == (None, "b1")
    assert people.head_move(HEAD, {**HEAD, "display_name": "x"}) == (None, None)


def test_the_last_active_admin_stays() -> None:
    admin = {"_id": "a", "role": "admin", "active": True}
    assert people.last_admin_problem(admin, {**admin, "active": False}, 0).field == "active"  # type: ignore[union-attr]
    assert people.last_admin_problem(admin, {**admin, "role": "compliance"}, 0).field == "role"  # type: ignore[union-attr]
    assert people.last_admin_problem(admin, {**admin, "active": False}, 1) is None
    assert people.last_admin_problem({**admin, "active": False}, {**admin, "role": "compliance"}, 0) is None
