"""Regions and branches: creating, changing and closing them.

A time-zone change moves the deadlines of the branch's open work (rectification due dates and reminders,
visits not started) to the same local time in the new zone. A geofence change applies to later visits only:
an audit's check-in flags were decided when it started and stay. A closed branch gets no new visits; its
open work is listed for compliance to finish or cancel, and its history stays."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from schemas.admin import BranchUpdate, RegionUpdate
from schemas.events import BranchClosed, BranchCreated, BranchUpdated, RegionCreated, RegionUpdated, UserUpdated
from schemas.org import BranchCreate, RegionCreate
from server.context import Services, UnitOfWork
from server.db import Doc
from server.domain import access, people
from server.domain.access import Principal
from server.domain.branches import same_local_time
from server.errors import Conflict, ValidationFailed, field_error
from server.services import NO_ORIGIN, Origin, actor_of, found, require_role_unless_operator, transact_unique
from server.sessions import end_sessions_of_user
from server.storage import branch_work, org, programs, users

ADMINS = access.ADMINISTRATORS


# --- regions -------------------------------------------------------------------------------------


async def create_region(services: Services, caller: Principal | None, command: RegionCreate,
                        origin: Origin = NO_ORIGIN) -> Doc:
    """`caller` None: the operator on the command line (the generator's synthetic organisation)."""
    require_role_unless_operator(caller, ADMINS)
    doc = {"_id": str(uuid.uuid4()), **command.model_dump(), "created_at": services.clock.now()}

    async def work(uow: UnitOfWork) -> None:
        await org.insert_region(uow.db, doc, uow.session)
        uow.emit(RegionCreated(region_id=doc["_id"], name=command.name), subject_type="region", subject_id=doc["_id"])
        uow.record("region.create", "region", doc["_id"], {"code": command.code, "name": command.name})

    await transact_unique(services, actor_of(caller, origin), work, "code",
                          f"A region with code {command.code} already exists")
    return doc


async def update_region(services: Services, caller: Principal, region_id: str, command: RegionUpdate,
                        origin: Origin = NO_ORIGIN) -> Doc:
    """Rename a region, change its code or its manager (who must be one of its regional managers)."""
    access.require_role(caller, ADMINS)
    values = command.model_dump(include=command.model_fields_set)
    manager_id = values.get("manager_user_id")
    if manager_id:
        manager = await users.by_id(services.db, manager_id)
        if manager is None or manager.get("role") != access.REGIONAL_MANAGER or not people.is_active(manager):
            raise ValidationFailed("Not an active regional manager", errors=[
                field_error(["body", "manager_user_id"], "not an active regional manager")])

    async def work(uow: UnitOfWork) -> Doc:
        before = found(await org.region_in(uow.db, region_id, uow.session), "Region")
        changed = people.changed_fields(before, values)
        if not changed:
            return before
        if manager_id:
            manager = await users.by_id_in(uow.db, manager_id, uow.session)
            if manager is None or manager.get("region_id") != region_id:
                raise ValidationFailed("The manager belongs to another region", errors=[
                    field_error(["body", "manager_user_id"], "manages another region")])
        changes = {name: values[name] for name in changed}
        await org.set_region_fields(uow.db, region_id, {**changes, "updated_at": uow.now}, uow.session)
        uow.emit(RegionUpdated(region_id=region_id, changed=changed), subject_type="region", subject_id=region_id)
        uow.record("region.update", "region", region_id, {"changed": changed})
        return {**before, **changes}

    return await transact_unique(services, actor_of(caller, origin), work, "code",
                                 f"A region with code {values.get('code')} already exists")


# --- branches ------------------------------------------------------------------------------------


async def create_branch(services: Services, caller: Principal | None, command: BranchCreate,
                        origin: Origin = NO_ORIGIN) -> Doc:
    """`caller` None: the operator on the command line (the generator's synthetic organisation)."""
    require_role_unless_operator(caller, ADMINS)
    if await org.region(services.db, command.region_id) is None:
        raise ValidationFailed("Unknown region", errors=[field_error(["body", "region_id"], "no such region")])
    doc = {"_id": str(uuid.uuid4()), **command.model_dump(), "head_user_id": None, "created_at": services.clock.now()}

    async def work(uow: UnitOfWork) -> None:
        await org.insert_branch(uow.db, doc, uow.session)
        uow.emit(BranchCreated(branch_id=doc["_id"], code=command.code, region_id=command.region_id,
                               timezone=command.timezone),
                 subject_type="branch", subject_id=doc["_id"], region_id=command.region_id)
        uow.record("branch.create", "branch", doc["_id"], {"code": command.code, "name": command.name})

    await transact_unique(services, actor_of(caller, origin), work, "code",
                          f"A branch with code {command.code} already exists")
    return doc


async def _check_branch_references(services: Services, values: dict[str, Any]) -> None:
    if values.get("region_id") and await org.region(services.db, values["region_id"]) is None:
        raise ValidationFailed("Unknown region", errors=[field_error(["body", "region_id"], "no such region")])
    head_id = values.get("head_user_id")
    if head_id:
        head = await users.by_id(services.db, head_id)
        if head is None or head.get("role") != access.BRANCH_HEAD or not people.is_active(head):
            raise ValidationFailed("Not an active branch head", errors=[
                field_error(["body", "head_user_id"], "not an active branch head")])


async def update_branch(services: Services, caller: Principal, branch_id: str, command: BranchUpdate,
                        origin: Origin = NO_ORIGIN) -> Doc:
    """Change a branch's details, time zone, head or region (see the module docstring)."""
    access.require_role(caller, ADMINS)
    values = command.model_dump(mode="json", include=command.model_fields_set)
    await _check_branch_references(services, values)

    async def work(uow: UnitOfWork) -> Doc:
        before = found(await org.branch_in(uow.db, branch_id, uow.session), "Branch")
        changed = people.changed_fields(before, values)
        if not changed:
            return before
        changes = {name: values[name] for name in changed}
        await org.set_branch_fields(uow.db, branch_id, {**changes, "updated_at": uow.now}, uow.session)
        after = {**before, **changes}
        moved = 0
        if "timezone" in changes:
            moved = await _move_open_work(uow, branch_id, before["timezone"], changes["timezone"])
        if "region_id" in changes:
            await branch_work.move_to_region(uow.db, branch_id, changes["region_id"], uow.session)
        if changes.get("head_user_id"):
            await _bring_head(uow, after, changes["head_user_id"])
        uow.emit(BranchUpdated(branch_id=branch_id, changed=changed, timezone=after["timezone"],
                               previous_timezone=before["timezone"] if "timezone" in changes else None,
                               moved_due_dates=moved),
                 subject_type="branch", subject_id=branch_id, region_id=after["region_id"])
        uow.record("branch.update", "branch", branch_id, {"changed": changed, "moved_due_dates": moved})
        return after

    return await services.transact(actor_of(caller, origin), work)


async def _move_open_work(uow: UnitOfWork, branch_id: str, old_timezone: str, new_timezone: str) -> int:
    """Deadlines of open rectifications and windows of visits not started keep their local time."""
    def shift(moment: datetime) -> datetime:
        return same_local_time(moment, old_timezone, new_timezone)

    moved = 0
    for rect in await branch_work.open_rectifications(uow.db, branch_id, uow.session):
        changes: dict[str, Any] = {"timezone": new_timezone, "due_at": shift(rect["due_at"])}
        if rect.get("next_reminder_at"):
            changes["next_reminder_at"] = shift(rect["next_reminder_at"])
        await branch_work.set_rectification_fields(uow.db, rect["_id"], changes, uow.session)
        moved += 1
    for visit in await programs.not_started_of(uow.db, {"branch_id": branch_id}, uow.session):
        await programs.set_assignment_fields(uow.db, visit["_id"], _shifted_window(visit, shift), uow.session)
        moved += 1
    return moved


def _shifted_window(visit: Doc, shift: Callable[[datetime], datetime]) -> dict[str, datetime]:
    return {"window_start": shift(visit["window_start"]), "window_end": shift(visit["window_end"])}


async def _bring_head(uow: UnitOfWork, branch: Doc, head_id: str) -> None:
    """The new head works at this branch now: their scope moves here (and their sessions end)."""
    head = await users.by_id_in(uow.db, head_id, uow.session)
    if head is None or head.get("branch_id") == branch["_id"]:
        return
    changes = {"branch_id": branch["_id"], "region_id": branch["region_id"]}
    if head.get("branch_id"):
        await org.clear_branch_head(uow.db, head["branch_id"], head_id, uow.session)
    await users.set_fields(uow.db, head_id, {**changes, "updated_at": uow.now}, uow.session)
    await end_sessions_of_user(uow, head_id, "moved to another branch")
    changed = people.changed_fields(head, changes)
    uow.emit(UserUpdated(user_id=head_id, changed=changed, role=head["role"], active=True, sessions_ended=True),
             subject_type="user", subject_id=head_id)
    uow.record("user.update", "user", head_id, {"changed": changed, "sessions_ended": True},
               branch_id=branch["_id"])


async def close_branch(services: Services, caller: Principal, branch_id: str, reason: str,
                       origin: Origin = NO_ORIGIN) -> tuple[Doc, dict[str, list[Doc]]]:
    """Close a branch: no new visits are planned there; returns it with its open work."""
    access.require_role(caller, ADMINS)

    async def work(uow: UnitOfWork) -> tuple[Doc, dict[str, list[Doc]]]:
        branch = found(await org.branch_in(uow.db, branch_id, uow.session), "Branch")
        if branch.get("closed_at"):
            raise Conflict("The branch is already closed")
        changes = {"closed_at": uow.now, "closed_reason": reason, "closed_by": uow.actor.user_id}
        await org.set_branch_fields(uow.db, branch_id, changes, uow.session)
        open_work = {
            "assignments": await programs.open_of_branch(uow.db, branch_id, uow.session),
            "audits": await branch_work.unfinished_audits(uow.db, branch_id, uow.session),
            "rectifications": await branch_work.open_rectifications(uow.db, branch_id, uow.session),
        }
        counts = {name: len(docs) for name, docs in open_work.items()}
        uow.emit(BranchClosed(branch_id=branch_id, reason=reason, open_assignments=counts["assignments"],
                              open_audits=counts["audits"], open_rectifications=counts["rectifications"]),
                 subject_type="branch", subject_id=branch_id, region_id=branch["region_id"])
        uow.record("branch.close", "branch", branch_id, {"reason": reason, **counts})
        return {**branch, **changes}, open_work

    return await services.transact(actor_of(caller, origin), work)
