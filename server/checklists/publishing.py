"""Publishing a checklist: a changed definition becomes a new immutable version; an unchanged one
changes nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pymongo.errors import DuplicateKeyError

from schemas.checklist import Checklist
from schemas.checklist_events import ChecklistPublished
from server.checklists import serving
from server.checklists.loading import load_dir
from server.context import ActorInfo, Services, UnitOfWork
from server.storage import checklists as store

log = logging.getLogger("branch_audit.checklists")

# Each retry follows a publisher that took the same version number a moment earlier; a handful is plenty.
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class PublishResult:
    key: str
    version: int
    created: bool
    content_hash: str


async def publish(services: Services, checklist: Checklist, actor: ActorInfo) -> PublishResult:
    """Store `checklist` as a new version unless the current version has the same content hash."""
    digest = store.content_hash(checklist)

    async def work(uow: UnitOfWork) -> PublishResult:
        current = await store.current_version(uow.db, checklist.key, uow.session)
        if current is not None:
            record = await store.version_record(uow.db, checklist.key, current, uow.session)
            if record is not None and record["content_hash"] == digest:
                return PublishResult(checklist.key, current, False, digest)
        version = await store.latest_version_number(uow.db, checklist.key, uow.session) + 1
        await store.insert_version(uow.db, checklist, version, digest, uow.now, actor.user_id or actor.role,
                                   uow.session)
        await store.point_to(uow.db, checklist, version, uow.now, uow.session)
        uow.emit(
            ChecklistPublished(key=checklist.key, version=version, content_hash=digest,
                               previous_version=current, channel=checklist.channel,
                               item_count=len(checklist.items())),
            subject_type="checklist", subject_id=checklist.key,
        )
        uow.record("checklist.publish", "checklist", checklist.key,
                   {"version": version, "previous_version": current, "content_hash": digest})
        return PublishResult(checklist.key, version, True, digest)

    attempt = 1
    while True:
        try:
            result = await services.transact(actor, work)
            break
        except DuplicateKeyError:
            if attempt >= MAX_ATTEMPTS:
                raise
            attempt += 1
    if result.created:
        serving.forget_current(services, checklist.key)
        log.info("checklist published", extra={"key": result.key, "version": result.version})
    return result


async def publish_shipped(services: Services) -> None:
    """Publish every valid definition in settings.checklists_dir; invalid files are logged and skipped."""
    directory = services.settings.checklists_dir
    if not directory.is_dir():
        log.warning("checklists directory not found; nothing published", extra={"path": str(directory)})
        return
    actor = ActorInfo.system("startup")
    for result in load_dir(directory):
        if result.checklist is None:
            for problem in result.problems:
                log.error("invalid checklist definition: %s", problem, extra={"file": result.file})
            log.error("checklist file skipped: it has problems", extra={"file": result.file,
                                                                         "problems": len(result.problems)})
            continue
        published = await publish(services, result.checklist, actor)
        log.info("shipped checklist", extra={"key": published.key, "version": published.version,
                                             "new_version": published.created, "file": result.file})
