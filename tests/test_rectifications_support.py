"""Test data for the rectification tests: a released audit with findings, run through the real handler.

(No tests here; the audits area is built in parallel, so its documents are written directly in the
shapes docs/DATA-MODEL.md fixes.)"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.checklist import Checklist
from server.context import ActorInfo, Services, UnitOfWork
from server.db import Doc
from server.handlers import rectifications as handler

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


async def release_audit(services: Services, org: Org, *, branch: str = "SH-LJZ", auditor: str = "inspector",
                        findings: list[tuple[str, str, bool]] | None = None,
                        released_at: datetime | None = None, photo_ids: list[str] | None = None) -> list[Doc]:
    """Write a released audit with findings (item_id, severity, fixed_on_spot), run the handler on its
    audit.released event and return the rectifications, ordered by item."""
    b = org.branches[branch]
    auditor_doc = await services.db.users.find_one({"username": auditor})
    assert auditor_doc is not None
    audit_id = str(uuid.uuid4())
    now = services.clock.now()
    released = released_at or now
    await services.db.audits.insert_one({
        "_id": audit_id, "branch_id": b["_id"], "region_id": b["region_id"], "checklist_key": CHECKLIST_KEY,
        "checklist_version": 1, "auditor_id": auditor_doc["_id"], "auditor_role": auditor_doc["role"],
        "status": "released", "released_at": released, "open_rectifications": 0, "created_at": now})
    rows = findings if findings is not None else [("hall_clean", "major", False)]
    finding_ids = []
    for item_id, severity, fixed in rows:
        finding_id = str(uuid.uuid4())
        finding_ids.append(finding_id)
        await services.db.findings.insert_one({
            "_id": finding_id, "audit_id": audit_id, "branch_id": b["_id"], "region_id": b["region_id"],
            "checklist_key": CHECKLIST_KEY, "item_id": item_id, "section_id": "hall", "severity": severity,
            "critical": severity == "critical", "answer": {"value": False, "na": False, "note": "dirty"},
            "photo_ids": list(photo_ids or [f"inspector-photo-{item_id}"]), "status": "open",
            "fixed_on_spot": fixed, "created_at": now})
    event = released_event(audit_id, b, finding_ids, released)
    await run_handler(services, event)
    return await services.db.rectifications.find({"audit_id": audit_id}).sort("item_id", 1).to_list()


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
