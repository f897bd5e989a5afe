"""Programs (campaigns of visits) and their assignments: creating and planning a program, changing its name
or dates, cancelling it; moving, reassigning or cancelling one visit.

A changed visit follows the planning rules (server.domain.assignments): never the assignee's home branch,
never the same shopper twice in a row at a branch, no double booking with travel time, inside the branch's
opening hours and the program's period. Events about visits never name the assignee nor the time of a
covert visit: integrations relay them, and a branch must not learn who its shopper was."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pymongo.errors import DuplicateKeyError

from schemas.admin import AssignmentUpdate, ProgramUpdate
from schemas.audits import ProgramCreate
from schemas.events import AssignmentCancelled, AssignmentUpdated, ProgramCancelled, ProgramUpdated
from server.context import Services, UnitOfWork
from server.db import Database, Doc
from server.domain import access, people
from server.domain.access import Principal
from server.domain.assignments import (
    Person,
    PlanningError,
    Rotation,
    VisitProblem,
    assignee_problems,
    branch_slot_info,
    plan_visits,
    window_problems,
)
from server.errors import Conflict, InvalidTransition, NotFound, ValidationFailed, field_error
from server.notify import channels as notify
from server.notify.messages import format_local, render
from server.services import NO_ORIGIN, Origin, actor_of, found
from server.services.checklists import pinnable_checklist
from server.storage import org, programs, users

PLANNERS = access.PLANNERS
CANCELLED = "cancelled"
MAX_PROGRAM_DAYS = 366


def _refuse(problems: list[VisitProblem]) -> None:
    if problems:
        raise ValidationFailed(problems[0].message,
                               errors=[field_error(["body", p.field], p.message) for p in problems])


# --- programs ------------------------------------------------------------------------------------

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
    role = access.MYSTERY_SHOPPER if program["covert"] else access.INSPECTOR
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




async def create_program(services: Services, caller: Principal, command: ProgramCreate,
                         origin: Origin = NO_ORIGIN) -> Doc:
    """A program of visits over branches or regions (its visits are generated by generate_assignments)."""
    access.require_role(caller, PLANNERS)
    await pinnable_checklist(services, command.checklist_key)
    if command.branch_ids:
        found = {b["_id"]: b for b in await org.branches_in(services.db, branch_ids=command.branch_ids)}
        errors = [field_error(["body", "branch_ids", i], "no such branch")
                  for i, b in enumerate(command.branch_ids) if b not in found]
        errors += [field_error(["body", "branch_ids", i], "the branch is closed")
                   for i, b in enumerate(command.branch_ids) if b in found and found[b].get("closed_at")]
        if errors:
            raise ValidationFailed("Unknown or closed branches", errors=errors)
    for index, region_id in enumerate(command.region_ids or []):
        if await org.region(services.db, region_id) is None:
            raise ValidationFailed("Unknown region",
                                   errors=[field_error(["body", "region_ids", index], "no such region")])
    doc = program_document(
        name=command.name, checklist_key=command.checklist_key, branch_ids=command.branch_ids or [],
        region_ids=command.region_ids or [], starts_on=command.starts_on, ends_on=command.ends_on,
        visits_per_branch=command.visits_per_branch, channel=command.channel, covert=command.covert,
        created_by=caller.user_id, now=services.clock.now(),
    )

    async def work(uow: UnitOfWork) -> None:
        await programs.insert_program(uow.db, doc, uow.session)
        uow.record("program.create", "program", doc["_id"], {"name": command.name, "covert": command.covert})

    await services.transact(actor_of(caller, origin), work)
    return doc


async def generate_assignments(services: Services, caller: Principal, program_id: str,
                               origin: Origin = NO_ORIGIN) -> tuple[list[Doc], bool]:
    """Plan the program's visits once: (the visits, whether this call created them)."""
    access.require_role(caller, PLANNERS)
    db = services.db
    program = found(await programs.program(db, program_id), "Program")
    if program.get("assignments_generated_at"):
        return await programs.assignments_of_program(db, program_id), False
    if program.get("cancelled_at"):
        raise InvalidTransition("The program is cancelled")
    docs = await plan_program(db, program)

    async def work(uow: UnitOfWork) -> bool:
        fresh = await programs.program_in(uow.db, program_id, uow.session)
        if fresh is None or fresh.get("assignments_generated_at"):
            return False
        await programs.insert_assignments(uow.db, docs, program_id, uow.now, uow.session)
        uow.record("program.generate_assignments", "program", program_id, {"assignments": len(docs)})
        return True

    try:
        created = await services.transact(actor_of(caller, origin), work)
    except DuplicateKeyError:
        created = False  # a concurrent request generated the same (deterministic) assignments
    if not created:
        return await programs.assignments_of_program(db, program_id), False
    return docs, True


async def _visits_outside(services: Services, program: Doc, starts_on: date, ends_on: date) -> bool:
    """Whether any visit not cancelled would fall outside the new period (in its branch's local dates)."""
    visits = [v for v in await programs.assignments_of_program(services.db, program["_id"]) if v["status"] != CANCELLED]
    zones = {b["_id"]: ZoneInfo(b.get("timezone") or "UTC")
             for b in await org.branches_in(services.db, branch_ids=sorted({v["branch_id"] for v in visits}))}
    for visit in visits:
        zone = zones.get(visit["branch_id"], ZoneInfo("UTC"))
        if not starts_on <= visit["window_start"].astimezone(zone).date() <= ends_on:
            return True
    return False


async def update_program(services: Services, caller: Principal, program_id: str, command: ProgramUpdate,
                         origin: Origin = NO_ORIGIN) -> Doc:
    """Rename a program or change its dates; planned visits must still fit the new period."""
    access.require_role(caller, PLANNERS)
    program = found(await programs.program(services.db, program_id), "Program")
    if program.get("cancelled_at"):
        raise InvalidTransition("The program is cancelled")
    values = command.model_dump(mode="json", include=command.model_fields_set)
    starts_on = date.fromisoformat(str(values.get("starts_on", program["starts_on"])))
    ends_on = date.fromisoformat(str(values.get("ends_on", program["ends_on"])))
    field = "ends_on" if "ends_on" in values else "starts_on"
    if ends_on < starts_on:
        raise ValidationFailed("The program ends before it starts",
                               errors=[field_error(["body", field], "ends before starts_on")])
    if ends_on - starts_on > timedelta(days=MAX_PROGRAM_DAYS):
        raise ValidationFailed("A program lasts at most a year", errors=[field_error(["body", field], "too long")])
    if ("starts_on" in values or "ends_on" in values) and await _visits_outside(services, program, starts_on, ends_on):
        raise Conflict("Planned visits fall outside the new period: move or cancel them first",
                       errors=[field_error(["body", field], "planned visits fall outside the new period")])

    async def work(uow: UnitOfWork) -> Doc:
        before = found(await programs.program_in(uow.db, program_id, uow.session), "Program")
        changed = people.changed_fields(before, values)
        if not changed:
            return before
        changes = {name: values[name] for name in changed}
        await programs.set_program_fields(uow.db, program_id, {**changes, "updated_at": uow.now}, uow.session)
        uow.emit(ProgramUpdated(program_id=program_id, changed=changed), subject_type="program", subject_id=program_id)
        uow.record("program.update", "program", program_id, {"changed": changed, **changes})
        return {**before, **changes}

    return await services.transact(actor_of(caller, origin), work)


async def cancel_program(services: Services, caller: Principal, program_id: str, reason: str,
                         origin: Origin = NO_ORIGIN) -> tuple[Doc, int, int]:
    """Cancel a program: its visits not started are cancelled; audits under way are kept and finish normally.
    Returns the program and how many visits were cancelled and kept."""
    access.require_role(caller, PLANNERS)

    async def work(uow: UnitOfWork) -> tuple[Doc, int, int]:
        program = found(await programs.program_in(uow.db, program_id, uow.session), "Program")
        if program.get("cancelled_at"):
            raise InvalidTransition("The program is already cancelled")
        visits = await programs.not_started_of(uow.db, {"program_id": program_id}, uow.session)
        for visit in visits:
            await _cancel_visit(uow, visit, reason)
        kept = await programs.count_of_program(uow.db, program_id, ["in_progress", "submitted", "released"],
                                               uow.session)
        changes = {"cancelled_at": uow.now, "cancelled_reason": reason}
        await programs.set_program_fields(uow.db, program_id, changes, uow.session)
        uow.emit(ProgramCancelled(program_id=program_id, reason=reason, cancelled_assignments=len(visits),
                                  kept_assignments=kept), subject_type="program", subject_id=program_id)
        uow.record("program.cancel", "program", program_id,
                   {"reason": reason, "cancelled_assignments": len(visits), "kept_assignments": kept})
        return {**program, **changes}, len(visits), kept

    return await services.transact(actor_of(caller, origin), work)


# --- one visit -----------------------------------------------------------------------------------


async def _cancel_visit(uow: UnitOfWork, visit: Doc, reason: str) -> None:
    await programs.set_assignment_fields(uow.db, visit["_id"], {
        "status": CANCELLED, "cancelled_at": uow.now, "cancelled_reason": reason}, uow.session)
    uow.emit(AssignmentCancelled(assignment_id=visit["_id"], program_id=visit["program_id"],
                                 branch_id=visit["branch_id"], reason=reason),
             subject_type="assignment", subject_id=visit["_id"], program_id=visit["program_id"])
    uow.record("assignment.cancel", "assignment", visit["_id"], {"reason": reason}, program_id=visit["program_id"])


async def cancel_assignment(services: Services, caller: Principal, assignment_id: str, reason: str,
                            origin: Origin = NO_ORIGIN) -> Doc:
    """Cancel one visit not yet started."""
    access.require_role(caller, PLANNERS)

    async def work(uow: UnitOfWork) -> Doc:
        visit = found(await programs.assignment_in(uow.db, assignment_id, uow.session), "Assignment")
        if visit["status"] != programs.NOT_STARTED:
            raise InvalidTransition(f"Only a visit not started can be cancelled; this one is {visit['status']}")
        await _cancel_visit(uow, visit, reason)
        return {**visit, "status": CANCELLED, "cancelled_at": uow.now, "cancelled_reason": reason}

    return await services.transact(actor_of(caller, origin), work)


async def _check_assignee(services: Services, visit: Doc, assignee_id: str) -> Person:
    person = await users.by_id(services.db, assignee_id)
    role = access.MYSTERY_SHOPPER if visit["covert"] else access.INSPECTOR
    if person is None or person.get("role") != role or not people.is_active(person):
        kind = "mystery shopper" if visit["covert"] else "inspector"
        raise ValidationFailed(f"Not an active {kind}",
                               errors=[field_error(["body", "assignee_id"], f"not an active {kind}")])
    return Person(person["_id"], person.get("home_branch_id"))


async def _tell_assignee(uow: UnitOfWork, assignee_id: str, assignment_id: str, branch: Doc,
                         start: datetime) -> None:
    """The new assignee learns of the visit (only they and compliance know who goes, and when)."""
    recipients = await notify.load_recipients(uow.db, [assignee_id])
    channels = notify.channels_of(uow.services)
    for recipient in recipients.values():
        window = format_local(start, branch.get("timezone") or "UTC", recipient.language)
        message = render("visit.assigned", recipient.language, {"branch": branch["name"], "window": window},
                         data={"assignment_id": assignment_id, "branch_id": branch["_id"]})
        await notify.deliver(uow, recipient, message, channels)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


async def update_assignment(services: Services, caller: Principal, assignment_id: str, command: AssignmentUpdate,
                            origin: Origin = NO_ORIGIN) -> Doc:
    """Give a visit not yet started to another person and/or move it to another window."""
    access.require_role(caller, PLANNERS)
    db = services.db
    visit = found(await programs.assignment(db, assignment_id), "Assignment")
    if visit["status"] != programs.NOT_STARTED:
        raise InvalidTransition(f"Only a visit not started can be changed; this one is {visit['status']}")
    program = await programs.program(db, visit["program_id"])
    branch = await org.branch(db, visit["branch_id"])
    if program is None or branch is None:
        raise NotFound("Assignment not found")
    # Stored and compared in UTC, as planning writes them.
    start = _utc(command.window_start or visit["window_start"])
    end = _utc(command.window_end or visit["window_end"])
    if command.window_start is not None:
        _refuse(window_problems(branch_slot_info(branch), start, end, date.fromisoformat(program["starts_on"]),
                                date.fromisoformat(program["ends_on"])))
    assignee_id = command.assignee_id or visit.get("assignee_id")
    changes: dict[str, object] = {}
    if command.assignee_id is not None and command.assignee_id != visit.get("assignee_id"):
        changes["assignee_id"] = command.assignee_id
    if (start, end) != (_utc(visit["window_start"]), _utc(visit["window_end"])):
        changes |= {"window_start": start, "window_end": end}
    if not changes:
        return visit

    async def work(uow: UnitOfWork) -> Doc:
        fresh = await programs.assignment_in(uow.db, assignment_id, uow.session)
        if fresh is None or fresh["status"] != programs.NOT_STARTED:
            raise InvalidTransition("The visit was started or cancelled meanwhile")
        if assignee_id:
            # Checked inside the transaction: two changes at once cannot book one person twice.
            person = await _check_assignee(services, visit, assignee_id)
            booked = await programs.booked_windows_except(
                uow.db, assignee_id, start - timedelta(days=1), end + timedelta(days=1), assignment_id, uow.session)
            previous = await programs.previous_visitor(uow.db, visit["branch_id"], visit["covert"], start,
                                                       assignment_id, uow.session)
            _refuse(assignee_problems(person, branch_id=visit["branch_id"], covert=visit["covert"],
                                      previous_visitor=previous, booked=booked, start=start, end=end))
        await programs.set_assignment_fields(uow.db, assignment_id, {**changes, "updated_at": uow.now}, uow.session)
        if assignee_id and "assignee_id" in changes:
            await _tell_assignee(uow, assignee_id, assignment_id, branch, start)
        changed = sorted({"assignee" if name == "assignee_id" else "window" for name in changes})
        uow.emit(AssignmentUpdated(assignment_id=assignment_id, program_id=visit["program_id"],
                                   branch_id=visit["branch_id"], changed=changed),
                 subject_type="assignment", subject_id=assignment_id, program_id=visit["program_id"])
        # The trail is read by compliance only, so it may name the shopper.
        uow.record("assignment.update", "assignment", assignment_id,
                   {"changed": changed, "assignee_id": assignee_id, "previous_assignee_id": visit.get("assignee_id")},
                   program_id=visit["program_id"])
        return {**fresh, **changes}

    return await services.transact(actor_of(caller, origin), work)
