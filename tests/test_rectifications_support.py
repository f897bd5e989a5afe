"""Test data for the rectification tests: an audit started, answered, submitted and released through the
audit commands, with the real handler run on its audit.released event. (No tests here.)"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.audits import AnswerIn, AuditStart
from schemas.checklist import Checklist
from server.context import ActorInfo, Services, UnitOfWork
from server.db import Doc
from server.handlers import rectifications as handler
from server.services import audits
from tests.audit_factories import add_photo, principal_of

CHECKLIST_KEY = "rect-test"


@dataclass
class Org:
    """The demo organisation's ids the tests need."""

    users: dict[str, str]  # username -> id
    branches: dict[str, Doc]  # code -> branch
    regions: dict[str, str]  # code -> id

    def user(self, username: str) -> str:
        return self.users[username]


async def load_org(services: Services) -> Org:
    users = {u["username"]: u["_id"] for u in await services.db.users.find({}, {"username": 1}).to_list()}
    branches = {b["code"]: b for b in await services.db.branches.find({}).to_list()}
    regions = {r["code"]: r["_id"] for r in await services.db.regions.find({}).to_list()}
    return Org(users, branches, regions)


def checklist(due_policy: dict[str, Any] | None = None) -> Checklist:
    def text(en: str, zh: str, es: str) -> dict[str, str]:
        return {"zh-CN": zh, "en": en, "es": es}

    return Checklist.model_validate({
        "key": CHECKLIST_KEY, "title": text("Hall", "大厅", "Sala"),
        "due_policy": due_policy,
        "sections": [{"id": "hall", "title": text("Hall", "大厅", "Sala"), "items": [
            {"id": "hall_clean", "type": "yes_no", "severity": "major",
             "text": text("The hall is clean", "大厅整洁", "La sala está limpia")},
            {"id": "badge_worn", "type": "yes_no", "severity": "minor",
             "text": text("Name badge worn", "佩戴工号牌", "Lleva la placa")},
            {"id": "cash_secure", "type": "yes_no", "severity": "critical", "critical": True,
             "text": text("Cash drawer locked", "现金抽屉上锁", "Cajón cerrado")},
        ]}],
    })


async def publish_checklist(services: Services, due_policy: dict[str, Any] | None = None) -> None:
    definition = checklist(due_policy).model_dump(mode="json", by_alias=True)
    await services.db.checklist_versions.replace_one(
        {"_id": f"{CHECKLIST_KEY}@1"},
        {"key": CHECKLIST_KEY, "version": 1, "definition": definition, "content_hash": "x",
         "published_at": services.clock.now(), "published_by": "test"}, upsert=True)
    await services.db.checklists.update_one(
        {"_id": CHECKLIST_KEY},
        {"$set": {"key": CHECKLIST_KEY, "current_version": 1, "title": definition["title"], "channel": "in_branch",
                  "updated_at": services.clock.now()}},
        upsert=True)


async def release_audit(services: Services, org: Org, *, branch: str = "SH-LJZ", auditor: str = "inspector",
                        findings: list[tuple[str, str, bool]] | None = None,
                        photo_ids: list[str] | None = None) -> list[Doc]:
    """An audit of `branch` by `auditor` failing the items of `findings` (item_id, severity, fixed_on_spot),
    with an inspector's photo of each, taken through start, answers, submit and release (now, by the
    clock); the rectification handler is run on its audit.released event. Returns the rectifications,
    ordered by item."""
    if await services.db.checklists.find_one({"_id": CHECKLIST_KEY}) is None:
        await publish_checklist(services)
    rows = findings if findings is not None else [("hall_clean", "major", False)]
    failed = {item_id: fixed for item_id, _, fixed in rows}
    who = await principal_of(services, auditor)
    now = services.clock.now()
    start = AuditStart(branch_id=org.branches[branch]["_id"], checklist_key=CHECKLIST_KEY, started_at=now)
    audit = (await audits.start_audit(services, who, audits.StartAudit(str(uuid.uuid4()), start))).audit
    answers = [
        AnswerIn(item_id=item.id, value=item.id not in failed, note="dirty" if item.id in failed else None,
                 fixed_on_spot=failed.get(item.id, False), answered_at=now)
        for item in checklist().sections[0].items
    ]
    await audits.answer_audit(services, who, audits.AnswerAudit(audit["_id"], answers))
    for item_id in failed:
        for photo_id in photo_ids or [f"inspector-photo-{item_id}"]:
            if await services.db.photos.count_documents({"_id": photo_id}):
                photo_id = f"{photo_id}-{audit['_id']}"  # a second audit in one test
            await add_photo(services.db, audit["_id"], item_id, audit["branch_id"], _id=photo_id)
    await audits.submit_audit(services, who, audit["_id"])
    await audits.release_audit(services, await principal_of(services, "compliance"), audit["_id"])
    event = await services.db.events.find_one({"type": "audit.released", "subject.id": audit["_id"]})
    assert event is not None
    await run_handler(services, event)
    return await services.db.rectifications.find({"audit_id": audit["_id"]}).sort("item_id", 1).to_list()


def released_event(audit_id: str, branch: Doc, finding_ids: list[str], released: datetime) -> Doc:
    return {
        "_id": str(uuid.uuid4()), "type": "audit.released", "schema_version": 1, "occurred_at": released,
        "actor": {"id": None, "role": "compliance", "kind": "user"}, "subject": {"type": "audit", "id": audit_id},
        "subject_ids": {"audit_id": audit_id, "branch_id": branch["_id"]},
        "payload": {"audit_id": audit_id, "branch_id": branch["_id"], "region_id": branch["region_id"],
                    "program_id": None, "checklist_key": CHECKLIST_KEY, "checklist_version": 1, "score": 80.0,
                    "grade": "B", "critical_failed": False, "finding_ids": finding_ids,
                    "released_at": released.isoformat()},
    }


async def run_handler(services: Services, event: Doc) -> None:
    async def work(uow: UnitOfWork) -> None:
        await handler.HANDLERS[0].handle(uow, event)

    await services.transact(ActorInfo.system("dispatcher"), work)


async def add_after_photo(services: Services, rect_id: str, photo_id: str = "after-1") -> None:
    """What the photos area does on upload."""
    await services.db.rectifications.update_one({"_id": rect_id}, {"$addToSet": {"photo_ids": photo_id}})
