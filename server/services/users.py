"""People: creating a user and changing one (name, e-mail, language, role, scope, active).

Deactivating someone, or changing their role or scope, ends their sessions in the same transaction;
deactivation also hands their visits not yet started back to compliance, with a notification. A branch's
`head_user_id` follows its head's moves. The last active admin stays an active admin."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from schemas.admin import UserUpdate
from schemas.events import AssignmentReturned, UserCreated, UserDeactivated, UserUpdated
from schemas.org import UserCreate
from server.context import Services, UnitOfWork
from server.db import Doc
from server.domain import access, people
from server.domain.access import Principal
from server.domain.password_rules import password_problems
from server.errors import Conflict, ValidationFailed, field_error
from server.notify import channels as notify
from server.notify.messages import render
from server.security import Passwords
from server.services import NO_ORIGIN, Origin, actor_of, found, require_role_unless_operator, transact_unique
from server.sessions import end_sessions_of_user
from server.storage import org, programs, users

ADMINS = access.ADMINISTRATORS
RETURNED_REASON = "assignee deactivated"


async def _check_references(services: Services, values: dict[str, Any]) -> None:
    """Every named region and branch exists (422 naming the field otherwise)."""
    errors = []
    for name in ("branch_id", "home_branch_id"):
        if values.get(name) and await org.branch(services.db, values[name]) is None:
            errors.append(field_error(["body", name], "no such branch"))
    if values.get("region_id") and await org.region(services.db, values["region_id"]) is None:
        errors.append(field_error(["body", "region_id"], "no such region"))
    if errors:
        raise ValidationFailed("Unknown region or branch", errors=errors)


async def new_user_document(command: UserCreate, now: datetime, passwords: Passwords) -> Doc:
    """A user as stored (the API, the command line and the tests create them through create_user)."""
    user = command.model_dump(exclude={"password"})
    if command.role == access.BRANCH_HEAD and not user.get("home_branch_id"):
        user["home_branch_id"] = command.branch_id
    return {"_id": str(uuid.uuid4()), **user, "password_hash": await passwords.hash(command.password),
            "active": True, "created_at": now}


async def create_user(services: Services, caller: Principal | None, command: UserCreate,
                      origin: Origin = NO_ORIGIN) -> Doc:
    """Create a user; a new branch head becomes the head of a branch that has none. `caller` None: the
    operator on the command line."""
    require_role_unless_operator(caller, ADMINS)
    weak = password_problems(command.password, command.username)
    if weak:
        raise ValidationFailed("The password is refused: " + "; ".join(weak),
                               errors=[field_error(["body", "password"], problem) for problem in weak])
    await _check_references(services, command.model_dump())
    if command.branch_id and not command.region_id:
        branch = await org.branch(services.db, command.branch_id)
        command = command.model_copy(update={"region_id": branch["region_id"] if branch else None})
    doc = await new_user_document(command, services.clock.now(), services.passwords)

    async def work(uow: UnitOfWork) -> None:
        await users.insert(uow.db, doc, uow.session)
        if command.role == access.BRANCH_HEAD and command.branch_id:
            await org.set_branch_head(uow.db, command.branch_id, doc["_id"], uow.session)
        uow.emit(UserCreated(user_id=doc["_id"], username=command.username, role=command.role,
                             region_id=command.region_id, branch_id=command.branch_id),
                 subject_type="user", subject_id=doc["_id"])
        uow.record("user.create", "user", doc["_id"], {"username": command.username, "role": command.role})

    await transact_unique(services, actor_of(caller, origin), work, "username", f"Username {command.username} is taken")
    return doc


async def update_user(services: Services, caller: Principal, user_id: str, command: UserUpdate,
                      origin: Origin = NO_ORIGIN) -> Doc:
    """Change a user; see the module docstring for what follows from a change."""
    access.require_role(caller, ADMINS)
    values = command.model_dump(include=command.model_fields_set)
    await _check_references(services, values)
    if values.get("branch_id") and "region_id" not in values:
        branch = await org.branch(services.db, values["branch_id"])
        if branch is not None:
            values["region_id"] = branch["region_id"]  # a branch's people belong to its region

    async def work(uow: UnitOfWork) -> Doc:
        before = found(await users.by_id_in(uow.db, user_id, uow.session), "User")
        changed = people.changed_fields(before, values)
        if not changed:
            return before
        changes = {name: values[name] for name in changed}
        after = {**before, **changes}
        problems = people.scope_problems(after)
        if problems:
            raise ValidationFailed(problems[0].message,
                                   errors=[field_error(["body", p.field], p.message) for p in problems])
        last_admin = people.last_admin_problem(
            before, after, await users.other_active_admins(uow.db, user_id, uow.session))
        if last_admin is not None:
            raise Conflict(last_admin.message, errors=[field_error(["body", last_admin.field], last_admin.message)])
        await users.set_fields(uow.db, user_id, {**changes, "updated_at": uow.now}, uow.session)
        await _move_headship(uow, before, after)
        sessions_ended = people.ends_sessions(changed)
        if sessions_ended:
            await end_sessions_of_user(uow, user_id, "deactivated" if "active" in changed else "role or scope changed")
        uow.emit(UserUpdated(user_id=user_id, changed=changed, role=after["role"], active=people.is_active(after),
                             sessions_ended=sessions_ended),
                 subject_type="user", subject_id=user_id)
        uow.record("user.update", "user", user_id, {"changed": changed, "role": after["role"],
                                                    "sessions_ended": sessions_ended})
        if people.is_active(before) and not people.is_active(after):
            returned = await _return_visits(uow, after)
            uow.emit(UserDeactivated(user_id=user_id, returned_assignments=returned),
                     subject_type="user", subject_id=user_id)
            uow.record("user.deactivate", "user", user_id, {"returned_assignments": returned})
        return {**after, "updated_at": uow.now}

    return await services.transact(actor_of(caller, origin), work)


async def _move_headship(uow: UnitOfWork, before: Doc, after: Doc) -> None:
    left, joined = people.head_move(before, after)
    if left:
        await org.clear_branch_head(uow.db, left, before["_id"], uow.session)
    if joined:
        await org.make_branch_head(uow.db, joined, before["_id"], uow.session)


async def _return_visits(uow: UnitOfWork, user: Doc) -> int:
    """The person's visits not started lose their assignee; compliance is told to reassign them."""
    visits = await programs.not_started_of(uow.db, {"assignee_id": user["_id"]}, uow.session)
    for visit in visits:
        await programs.set_assignment_fields(uow.db, visit["_id"], {
            "assignee_id": None, "returned_at": uow.now, "returned_reason": RETURNED_REASON,
            "previous_assignee_id": user["_id"]}, uow.session)
        uow.emit(AssignmentReturned(assignment_id=visit["_id"], program_id=visit["program_id"],
                                    branch_id=visit["branch_id"], reason=RETURNED_REASON),
                 subject_type="assignment", subject_id=visit["_id"], program_id=visit["program_id"])
        uow.record("assignment.return", "assignment", visit["_id"], {"reason": RETURNED_REASON},
                   program_id=visit["program_id"], user_id=user["_id"])
    if visits:
        await _tell_compliance(uow, user, visits)
    return len(visits)


async def _tell_compliance(uow: UnitOfWork, user: Doc, visits: list[Doc]) -> None:
    recipients = await notify.load_recipients(uow.db, await notify.users_with_role(uow.db, access.COMPLIANCE))
    channels = notify.channels_of(uow.services)
    person = user.get("display_name") or user["username"]
    for recipient in recipients.values():
        message = render("admin.assignments_returned", recipient.language, {"person": person, "count": len(visits)},
                         data={"user_id": user["_id"], "assignment_ids": [v["_id"] for v in visits]})
        await notify.deliver(uow, recipient, message, channels)
