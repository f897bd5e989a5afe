"""Checklists: publishing a definition, checking one without publishing, retiring and restoring a key.

A retired checklist starts no new audits and no new programs (`pinnable_checklist` is the one check, called
by the audit start and by program creation); audits already pinned to one of its versions finish normally,
since they read their pinned version and never the key's state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.checklist import Checklist
from schemas.checklist_api import ServedChecklist
from schemas.events import ChecklistRestored, ChecklistRetired
from server.checklists import publishing
from server.checklists.loading import LoadResult, load_text
from server.checklists.problems import DefinitionProblem
from server.checklists.serving import SUPPORTED, served_checklist
from server.context import Services, UnitOfWork
from server.db import Doc
from server.domain import access
from server.domain.access import Principal
from server.errors import Conflict, NotFound, ValidationFailed, field_error
from server.services import NO_ORIGIN, Origin, actor_of
from server.storage import checklists as store

ADMINS = access.ADMINISTRATORS


def is_retired(pointer: Doc | None) -> bool:
    return bool(pointer and pointer.get("retired"))


async def ensure_not_retired(services: Services, key: str,
                             loc: tuple[str | int, ...] = ("body", "checklist_key")) -> None:
    """422 naming `loc` when `key` is retired: the one check before new work (an audit, a program) pins any of
    its versions. Audits already started never call it, so they finish normally."""
    if is_retired(await store.pointer(services.db, key)):
        raise ValidationFailed(f"Checklist {key} is retired",
                               errors=[field_error(list(loc), "the checklist is retired: no new audits")])


async def pinnable_checklist(services: Services, key: str,
                             loc: tuple[str | int, ...] = ("body", "checklist_key")) -> tuple[Checklist, int]:
    """The version new work of `key` pins (the current one), or 422 naming `loc` when the key was never
    published or is retired."""
    pointer = await store.pointer(services.db, key)
    if pointer is None:
        raise ValidationFailed("Unknown checklist", errors=[field_error(list(loc), "no published checklist")])
    if is_retired(pointer):
        raise ValidationFailed(f"Checklist {key} is retired",
                               errors=[field_error(list(loc), "the checklist is retired: no new audits")])
    current = await store.get_current(services.db, key)
    if current is None:
        raise ValidationFailed("Unknown checklist", errors=[field_error(list(loc), "no published checklist")])
    return current


# --- publishing and checking -----------------------------------------------------------------------


async def publish_checklist(services: Services, caller: Principal, checklist: Checklist,
                            origin: Origin = NO_ORIGIN) -> publishing.PublishResult:
    """A changed definition becomes the next version; an unchanged one changes nothing."""
    access.require_role(caller, ADMINS)
    return await publishing.publish(services, checklist, actor_of(caller, origin))


def problem_entries(problems: list[DefinitionProblem]) -> list[dict[str, Any]]:
    """Problems as the API reports them: loc from the body, the dotted path, the message and the line."""
    return [{"loc": ["body", *p.loc], "path": p.path, "msg": p.message, "line": p.line} for p in problems]


@dataclass(frozen=True)
class Validation:
    loaded: LoadResult
    preview: dict[str, ServedChecklist] | None


def validate_definition(caller: Principal, text: str, *, json_body: bool) -> Validation:
    """Every problem of a definition with its line and path, and when there is none, the checklist as the
    phone will show it in each language. Nothing is stored."""
    access.require_role(caller, ADMINS)
    loaded = load_text(text, "body", json_body=json_body)
    if loaded.checklist is None:
        return Validation(loaded, None)
    digest = store.content_hash(loaded.checklist)
    preview: dict[str, ServedChecklist] = {
        language: served_checklist(loaded.checklist, 0, digest, language) for language in SUPPORTED}
    return Validation(loaded, preview)


# --- retiring and restoring -----------------------------------------------------------------------


async def retire_checklist(services: Services, caller: Principal, key: str, reason: str | None,
                           origin: Origin = NO_ORIGIN) -> Doc:
    """No new audits or programs of `key`; those under way finish on their pinned version."""
    access.require_role(caller, ADMINS)

    async def work(uow: UnitOfWork) -> Doc:
        pointer = await store.pointer(uow.db, key, uow.session)
        if pointer is None:
            raise NotFound(f"No checklist {key!r}")
        if is_retired(pointer):
            raise Conflict(f"Checklist {key} is already retired")
        retired = {"at": uow.now, "reason": reason, "by": uow.actor.user_id}
        await store.set_retired(uow.db, key, retired, uow.session)
        uow.emit(ChecklistRetired(key=key, current_version=pointer["current_version"], reason=reason),
                 subject_type="checklist", subject_id=key)
        uow.record("checklist.retire", "checklist", key, {"reason": reason, "version": pointer["current_version"]})
        return {**pointer, "retired": retired}

    return await services.transact(actor_of(caller, origin), work)


async def restore_checklist(services: Services, caller: Principal, key: str, origin: Origin = NO_ORIGIN) -> Doc:
    """A retired checklist may start new audits again."""
    access.require_role(caller, ADMINS)

    async def work(uow: UnitOfWork) -> Doc:
        pointer = await store.pointer(uow.db, key, uow.session)
        if pointer is None:
            raise NotFound(f"No checklist {key!r}")
        if not is_retired(pointer):
            raise Conflict(f"Checklist {key} is not retired")
        await store.set_retired(uow.db, key, None, uow.session)
        uow.emit(ChecklistRestored(key=key, current_version=pointer["current_version"]),
                 subject_type="checklist", subject_id=key)
        uow.record("checklist.restore", "checklist", key, {"version": pointer["current_version"]})
        return {k: v for k, v in pointer.items() if k != "retired"}

    return await services.transact(actor_of(caller, origin), work)


def checklist_state(pointer: Doc) -> dict[str, Any]:
    retired = pointer.get("retired") or {}
    return {"key": pointer["_id"], "current_version": pointer["current_version"], "retired": bool(retired),
            "retired_at": retired.get("at"), "retired_reason": retired.get("reason")}
