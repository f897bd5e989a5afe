"""Test data for audits: a small checklist covering every item type (inserted straight into the checklist
collections, in the shape server.storage.checklists uses), answers, photos and demo lookups; and audits
started, submitted and released through the same commands the API runs."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from schemas.audits import AnswerIn, AuditStart
from schemas.checklist import Checklist
from server.context import Services
from server.db import Database, Doc
from server.http.authz import Principal, principal_from_user
from server.services import audits

if TYPE_CHECKING:
    from tests.conftest import Api

KEY = "test-visit"


def text(en: str) -> dict[str, str]:
    return {"zh-CN": f"{en} (zh)", "en": en, "es": f"{en} (es)"}


def item(item_id: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"id": item_id, "type": kind, "text": text(item_id.replace("_", " ")), **extra}


def checklist_definition(key: str = KEY) -> dict[str, Any]:
    """Two sections, every item type, a critical item, show_if, N/A and every photo policy."""
    return {
        "key": key,
        "title": text("Test visit"),
        "default_language": "en",
        "channel": "in_branch",
        "grade_bands": [
            {"grade": "A", "min_score": 90},
            {"grade": "B", "min_score": 75},
            {"grade": "C", "min_score": 50},
            {"grade": "F", "min_score": 0},
        ],
        "sections": [
            {
                "id": "environment",
                "title": text("Environment"),
                "weight": 1,
                "items": [
                    item(
                        "hall_clean",
                        "yes_no",
                        weight=2,
                        severity="major",
                        photo={"policy": "required_on_fail", "min": 1, "max": 3},
                    ),
                    item("signage", "rating", scale={"min": 1, "max": 5, "pass_at": 4}),
                    item("atm_working", "yes_no", critical=True, na_allowed=True),
                    item("lobby_photo", "photo", photo={"policy": "required", "min": 1, "max": 2}),
                ],
            },
            {
                "id": "service",
                "title": text("Service"),
                "weight": 2,
                "items": [
                    item("greeted", "yes_no"),
                    item(
                        "complaint_followup", "yes_no", severity="major", show_if={"item": "greeted", "equals": False}
                    ),
                    item("wait_minutes", "number", pass_rule="<= 10", unit="minutes"),
                    item("time_to_greet", "timer", pass_rule="<= 30", unit="seconds"),
                    item(
                        "greeting_words",
                        "single_choice",
                        options=[
                            {"id": "standard", "text": text("standard")},
                            {"id": "none", "text": text("none"), "passing": False},
                        ],
                    ),
                    item(
                        "farewell",
                        "multi_choice",
                        options=[
                            {"id": "smile", "text": text("smile")},
                            {"id": "words", "text": text("words")},
                            {"id": "ignored", "text": text("ignored"), "passing": False},
                        ],
                    ),
                    item("badge_worn", "yes_no", photo={"policy": "optional"}),
                    item("comments", "text", required=False),
                ],
            },
        ],
    }


def sized_definition(n_items: int, key: str) -> dict[str, Any]:
    """A checklist of about `n_items` scored items in sections of ten (for the benchmark)."""
    kinds = [
        lambda i: item(f"q{i}", "yes_no"),
        lambda i: item(f"q{i}", "rating", scale={"min": 1, "max": 5, "pass_at": 4}),
        lambda i: item(f"q{i}", "number", pass_rule="<= 10", unit="minutes"),
        lambda i: item(
            f"q{i}",
            "single_choice",
            options=[{"id": "ok", "text": text("ok")}, {"id": "bad", "text": text("bad"), "passing": False}],
        ),
    ]
    items = [kinds[i % len(kinds)](i) for i in range(n_items)]
    sections = [
        {"id": f"s{n}", "title": text(f"Section {n}"), "items": items[n * 10 : (n + 1) * 10]}
        for n in range((n_items + 9) // 10)
    ]
    return {"key": key, "title": text(key), "default_language": "en", "sections": sections}


def content_hash(definition: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(definition, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


async def publish_checklist(
    db: Database, definition: dict[str, Any] | None = None, *, now: datetime | None = None
) -> int:
    """Publish a definition as the next version of its key; returns the version number."""
    parsed = Checklist.model_validate(definition or checklist_definition())
    stored = parsed.model_dump(mode="json", by_alias=True)
    head = await db.checklists.find_one({"_id": parsed.key})
    version = int(head["current_version"]) + 1 if head else 1
    at = now or datetime(2026, 1, 1)
    await db.checklist_versions.insert_one(
        {
            "_id": f"{parsed.key}@{version}",
            "key": parsed.key,
            "version": version,
            "content_hash": content_hash(stored),
            "definition": stored,
            "published_at": at,
            "published_by": None,
        }
    )
    await db.checklists.update_one(
        {"_id": parsed.key},
        {
            "$set": {
                "key": parsed.key,
                "current_version": version,
                "title": stored["title"],
                "channel": parsed.channel,
                "updated_at": at,
            }
        },
        upsert=True,
    )
    return version


# A value for every visible item of the test checklist that makes it pass.
PASSING_VALUES: dict[str, Any] = {
    "hall_clean": True,
    "signage": 5,
    "atm_working": True,
    "lobby_photo": None,
    "greeted": True,
    "wait_minutes": 4,
    "time_to_greet": 12,
    "greeting_words": "standard",
    "farewell": ["smile", "words"],
    "badge_worn": True,
    "comments": "fine",
}


def passing_answers(at: datetime, **overrides: Any) -> list[dict[str, Any]]:
    """Every visible item of the test checklist answered so that it passes; overrides replace values."""
    values = {**PASSING_VALUES, **overrides}
    stamp = at.isoformat()
    return [{"item_id": k, "value": v, "answered_at": stamp} for k, v in values.items()]


async def add_photo(db: Database, audit_id: str, item_id: str, branch_id: str, **extra: Any) -> str:
    photo_id = str(uuid.uuid4())
    sha = hashlib.sha256(photo_id.encode()).hexdigest()
    await db.photos.insert_one(
        {
            "_id": photo_id,
            "owner_type": "audit",
            "audit_id": audit_id,
            "item_id": item_id,
            "branch_id": branch_id,
            "sha256": sha,
            "dedup_key": f"audit:{audit_id}:{item_id}:{sha}",
            "owner_key": f"audit:{audit_id}",
            "flags": [],
            "purged": False,
            "uploaded_at": datetime(2026, 1, 1),
            **extra,
        }
    )
    return photo_id


async def ids_by(db: Database, collection: str, field: str) -> dict[str, Any]:
    return {d[field]: d for d in await db[collection].find({}).to_list()}


def start_body(
    branch_id: str,
    started_at: datetime,
    *,
    key: str = KEY,
    location: dict[str, float] | None = None,
    assignment_id: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"checklist_key": key, "started_at": started_at.isoformat()}
    if assignment_id:
        body["assignment_id"] = assignment_id
    else:
        body["branch_id"] = branch_id
    if location:
        body["location"] = location
    return body


def later(at: datetime, seconds: int) -> datetime:
    return at + timedelta(seconds=seconds)


def audit_doc(
    audit_id: str, *, branch: dict[str, Any], auditor_id: str, started_at: datetime, **fields: Any
) -> dict[str, Any]:
    """A stored audit as history sees it (for seeding listings without the phone flow)."""
    from server.storage.audits import history_key

    doc: dict[str, Any] = {
        "_id": audit_id,
        "assignment_id": None,
        "program_id": None,
        "branch_id": branch["_id"],
        "region_id": branch["region_id"],
        "branch_timezone": branch.get("timezone"),
        "checklist_key": KEY,
        "checklist_version": 1,
        "channel": "in_branch",
        "covert": False,
        "auditor_id": auditor_id,
        "auditor_role": "inspector",
        "status": "released",
        "started_at": started_at,
        "history_key": history_key(started_at, audit_id),
        "answers": {},
        "flags": [],
        "score": 90.0,
        "grade": "A",
        "critical_failed": False,
        "finding_counts": {"minor": 0, "major": 0, "critical": 0},
        "open_rectifications": 0,
        "released_at": started_at + timedelta(days=1),
    }
    doc.update(fields)
    return doc


async def create_program(api: Api, **fields: Any) -> dict[str, Any]:
    """POST /programs as compliance: the test checklist from 2026-11-02, overt, one visit, unless `fields` say."""
    body = {"name": "Program", "checklist_key": KEY, "starts_on": "2026-11-02", "ends_on": "2026-11-30",
            "visits_per_branch": 1, "covert": False, **fields}
    program: dict[str, Any] = await api.json("POST", "/api/v1/programs", "compliance", expect=201, json=body)
    return program


# --- audits made through the commands (server.services.audits), as a phone and a reviewer would ----------


async def principal_of(services: Services, username: str) -> Principal:
    user = await services.db.users.find_one({"username": username})
    assert user is not None, username
    return principal_from_user(user)


async def started_audit(
    services: Services, *, who: str = "inspector", branch_code: str = "SH-LJZ", **start: Any
) -> Doc:
    """An audit of the test checklist started through start_audit (the checklist published if it is not)."""
    if await services.db.checklists.find_one({"_id": KEY}) is None:
        await publish_checklist(services.db)
    branch = await services.db.branches.find_one({"code": branch_code})
    assert branch is not None, branch_code
    body = AuditStart.model_validate({**start_body(branch["_id"], services.clock.now()), **start})
    started = await audits.start_audit(
        services, await principal_of(services, who), audits.StartAudit(str(uuid.uuid4()), body)
    )
    return started.audit


async def submitted_audit(services: Services, *, who: str = "inspector", **answers: Any) -> Doc:
    """A started audit answered (passing unless `answers` say otherwise), with its photos, and submitted."""
    audit = await started_audit(services, who=who)
    caller = await principal_of(services, who)
    batch = [AnswerIn.model_validate(a) for a in passing_answers(services.clock.now(), **answers)]
    await audits.answer_audit(services, caller, audits.AnswerAudit(audit["_id"], batch))
    for item_id in ("lobby_photo", "hall_clean"):
        await add_photo(services.db, audit["_id"], item_id, audit["branch_id"])
    return await audits.submit_audit(services, caller, audit["_id"])


async def released_audit(services: Services, *, who: str = "inspector", **answers: Any) -> Doc:
    """A submitted audit released by compliance."""
    audit = await submitted_audit(services, who=who, **answers)
    return await audits.release_audit(services, await principal_of(services, "compliance"), audit["_id"])
