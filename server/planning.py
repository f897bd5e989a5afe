"""Planning a program's visits: who goes where and when, from the current people and past visits."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from server.db import Database, Doc
from server.domain.assignments import Person, PlanningError, Rotation, branch_slot_info, plan_visits
from server.errors import ValidationFailed, field_error
from server.http import authz
from server.storage import org, programs, users

# Assignment ids derive from (program, branch, visit number), so generating twice cannot duplicate visits.
ASSIGNMENT_NS = uuid.UUID("7d1c33a4-1f7e-4c55-9a43-1f6b7f0b8f21")


def program_document(
    *, name: str, checklist_key: str, branch_ids: list[str], region_ids: list[str], starts_on: date,
    ends_on: date, visits_per_branch: int, channel: str, covert: bool, created_by: str | None, now: datetime,
) -> dict[str, Any]:
    """A new program as stored (the API and the demo both create them)."""
    return {
        "_id": str(uuid.uuid4()),
        "name": name,
        "checklist_key": checklist_key,
        "branch_ids": sorted(set(branch_ids)),
        "region_ids": sorted(set(region_ids)),
        "starts_on": starts_on.isoformat(),
        "ends_on": ends_on.isoformat(),
        "visits_per_branch": visits_per_branch,
        "channel": channel,
        "covert": covert,
        "created_by": created_by,
        "created_at": now,
    }


async def plan_program(db: Database, program: Doc) -> list[Doc]:
    """The assignment documents of a program, planned from the current people and history."""
    branches: dict[str, Doc] = {}
    if program["branch_ids"]:
        branches.update({b["_id"]: b for b in await org.branches_in(db, branch_ids=program["branch_ids"])})
    if program["region_ids"]:
        branches.update({b["_id"]: b for b in await org.branches_in(db, region_ids=program["region_ids"])})
    # A closed branch gets no new visits (its history and open work stay).
    branches = {k: b for k, b in branches.items() if not b.get("closed_at")}
    role = authz.MYSTERY_SHOPPER if program["covert"] else authz.INSPECTOR
    people = [Person(u["_id"], u.get("home_branch_id")) for u in await users.with_role(db, role)]
    branch_ids = sorted(branches)
    person_ids = [p.id for p in people]
    starts_on, ends_on = date.fromisoformat(program["starts_on"]), date.fromisoformat(program["ends_on"])
    # A day either side: branches' local days straddle UTC midnight.
    period_start = datetime.combine(starts_on - timedelta(days=1), time(0), tzinfo=UTC)
    period_end = datetime.combine(ends_on + timedelta(days=2), time(0), tzinfo=UTC)
    rotation = Rotation(
        last_visitor=await programs.last_visitors(db, branch_ids, covert=program["covert"]),
        load=await programs.open_load(db, person_ids),
        booked=await programs.booked_windows(db, person_ids, period_start, period_end),
    )
    try:
        visits = plan_visits(
            [branch_slot_info(b) for b in branches.values()],
            people,
            starts_on=starts_on,
            ends_on=ends_on,
            visits_per_branch=program["visits_per_branch"],
            covert=program["covert"],
            rotation=rotation,
            salt=program["_id"],
        )
    except PlanningError as exc:
        raise ValidationFailed(str(exc), errors=[field_error(["path", "program_id"], str(exc))]) from None
    return [
        {
            "_id": str(uuid.uuid5(ASSIGNMENT_NS, f"{program['_id']}:{v.slot.branch_id}:{v.slot.visit_no}")),
            "program_id": program["_id"],
            "branch_id": v.slot.branch_id,
            "region_id": v.slot.region_id,
            "visit_no": v.slot.visit_no,
            "checklist_key": program["checklist_key"],
            "channel": program["channel"],
            "covert": program["covert"],
            "assignee_id": v.assignee_id,
            "window_start": v.slot.window_start,
            "window_end": v.slot.window_end,
            "status": "planned",
            "audit_id": None,
        }
        for v in visits
    ]
