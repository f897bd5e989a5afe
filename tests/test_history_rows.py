"""History rows are read with a projection (no answers): what every role's row shows must come from it."""

from __future__ import annotations

from datetime import UTC, datetime

from server.domain import access
from server.domain.audit_access import audit_row
from server.storage.audits import HISTORY_ROW_FIELDS
from tests.audit_factories import audit_doc

BRANCH = {"_id": "b1", "region_id": "r1", "timezone": "Asia/Shanghai"}


def principal(role: str) -> access.Principal:
    return access.Principal(user_id="u1", username="u", role=role, display_name="U", region_id="r1",
                            branch_id="b1", home_branch_id="b1", language="en", session_id="s")


def test_a_projected_audit_gives_every_role_the_same_row_as_the_whole_document() -> None:
    started = datetime(2026, 11, 2, 1, 30, tzinfo=UTC)
    whole = audit_doc("a1", branch=BRANCH, auditor_id="shopper", started_at=started, covert=True,
                      channel="phone", program_id="p1", auditor_name="Shopper", submitted_at=started,
                      flags=["late_upload"], answers={"x": {"value": True}})
    projected = {k: v for k, v in whole.items() if k == "_id" or k in HISTORY_ROW_FIELDS}
    assert "answers" not in projected
    key = b"k" * 32
    for role in (access.ADMIN, access.COMPLIANCE, access.REGIONAL_MANAGER, access.BRANCH_HEAD,
                 access.INSPECTOR, access.MYSTERY_SHOPPER):
        assert audit_row(principal(role), projected, key) == audit_row(principal(role), whole, key), role
