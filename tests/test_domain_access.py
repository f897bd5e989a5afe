"""Who may see what (server.domain.access), without a database: one rule per question, every role."""

from __future__ import annotations

from typing import Any

import pytest

from server.domain import access
from server.domain.access import Principal


def person(role: str, **scope: Any) -> Principal:
    return Principal(user_id=scope.pop("user_id", "u1"), username="u", role=role, display_name="U",
                     region_id=scope.get("region_id"), branch_id=scope.get("branch_id"),
                     home_branch_id=None, language="en", session_id="s")


AUDIT = {"_id": "a1", "auditor_id": "u1", "branch_id": "b1", "region_id": "r1", "status": "submitted"}
RELEASED = {**AUDIT, "status": "released"}


def test_the_role_groups_partition_the_roles_they_describe() -> None:
    assert access.HEAD_OFFICE <= access.ORGANISATION_WIDE
    assert access.BRANCH_ROLES <= access.BRANCH_SIDE
    assert not access.FIELD_ROLES & access.BRANCH_SIDE
    assert not access.HEAD_OFFICE & access.BRANCH_SIDE
    assert set(access.ROLES) == access.ORGANISATION_WIDE | access.FIELD_ROLES | access.BRANCH_SIDE


@pytest.mark.parametrize(
    ("who", "audit", "sees"),
    [
        (person("compliance"), AUDIT, True),
        (person("integration"), AUDIT, True),
        (person("inspector"), AUDIT, True),
        (person("inspector", user_id="other"), AUDIT, False),
        (person("branch_head", branch_id="b1"), AUDIT, False),  # not released yet
        (person("branch_head", branch_id="b1"), RELEASED, True),
        (person("branch_head", branch_id="b2"), RELEASED, False),
        (person("regional_manager", region_id="r1"), RELEASED, True),
        (person("regional_manager", region_id="r2"), RELEASED, False),
        (person("branch_head"), RELEASED, False),  # a head without a branch sees nothing
    ],
)
def test_can_view_audit(who: Principal, audit: dict[str, Any], sees: bool) -> None:
    assert access.can_view_audit(who, audit) is sees


def test_listings_are_confined_to_the_same_scope_as_the_single_reads() -> None:
    assert access.history_scope(person("admin")) == {}
    assert access.history_scope(person("mystery_shopper")) == {"auditor_id": "u1"}
    assert access.history_scope(person("branch_head", branch_id="b1")) == {"branch_id": "b1", "status": "released"}
    assert access.history_scope(person("branch_head")) is None
    assert access.finding_scope(person("regional_manager", region_id="r1")) == {
        "region_id": "r1", "released_at": access.RELEASED}
    assert access.appeal_scope(person("inspector")) is None


def test_rectifications_are_seen_by_their_branch_side_head_office_and_the_inspector_of_the_audit() -> None:
    rect = {"branch_id": "b1", "region_id": "r1", "inspector_id": "u9"}
    assert access.can_view_rectification(person("compliance"), rect)
    assert access.can_view_rectification(person("inspector", user_id="u9"), rect)
    assert not access.can_view_rectification(person("inspector"), rect)
    assert access.can_view_rectification(person("regional_manager", region_id="r1"), rect)
    assert not access.can_view_rectification(person("branch_head", branch_id="b2"), rect)
    assert not access.can_view_rectification(person("integration"), rect)
    assert access.rectification_scope_filter(person("mystery_shopper")) == {"inspector_id": "u1"}
    assert access.can_add_fix_evidence(person("branch_head", branch_id="b1"), rect)
    assert not access.can_add_fix_evidence(person("regional_manager", region_id="r1"), rect)


def test_only_the_branch_head_appeals_a_released_finding_of_their_branch() -> None:
    finding = {"branch_id": "b1", "released_at": "2026-11-02"}
    assert access.can_appeal(person("branch_head", branch_id="b1"), finding)
    assert not access.can_appeal(person("branch_head", branch_id="b1"), {**finding, "released_at": None})
    assert not access.can_appeal(person("regional_manager", region_id="r1", branch_id="b1"), finding)


FINDING = {"_id": "f1", "audit_id": "a1", "auditor_id": "u1", "branch_id": "b1", "region_id": "r1",
           "released_at": "2026-11-02T01:00:00Z"}


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        (person("compliance"), True),
        (person("admin"), True),
        (person("branch_head", branch_id="b1"), True),
        (person("regional_manager", region_id="r1"), True),
        (person("branch_head", branch_id="b2"), False),
        (person("regional_manager", region_id="r2"), False),
        (person("inspector"), False),  # the auditor whose finding is contested
        (person("mystery_shopper"), False),
        (person("integration"), False),
    ],
)
def test_appeal_photos_are_seen_by_the_reviewers_and_the_branch_side_only(who: Principal, sees: bool) -> None:
    assert access.can_view_appeal_evidence(who, FINDING) is sees
