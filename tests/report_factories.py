"""Audits, findings and rectifications in the docs/DATA-MODEL.md shapes for report tests, with their
events emitted through the real outbox and handed to the aggregates handler as the dispatcher would."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from schemas.audit_events import AuditReleased, AuditRescored
from server.context import ActorInfo, Services, UnitOfWork
from server.db import Doc
from server.handlers.aggregates import HANDLERS
from server.storage.audits import history_key

AGGREGATES = next(h for h in HANDLERS if h.name == "aggregates")
SECTIONS = ("environment", "service")
GRADE_BANDS = ((90, "A"), (80, "B"), (70, "C"), (60, "D"))


def grade_of(score: float, critical_failed: bool) -> str:
    if critical_failed:
        return "F"
    return next((grade for floor, grade in GRADE_BANDS if score >= floor), "F")


@dataclass
class Org:
    """The demo organisation's ids, by code."""

    branches: dict[str, Doc]
    regions: dict[str, Doc]
    users: dict[str, Doc]

    @classmethod
    async def load(cls, services: Services) -> Org:
        db = services.db
        branches = {b["code"]: b for b in await db.branches.find({}).to_list()}
        regions = {r["code"]: r for r in await db.regions.find({}).to_list()}
        users = {u["username"]: u for u in await db.users.find({}).to_list()}
        return cls(branches, regions, users)


class ReportFactory:
    """Writes audits through transactions and dispatches their events to the aggregates handler."""

    def __init__(self, services: Services, checklist_key: str = "branch-service", checklist_version: int = 1) -> None:
        self.services = services
        self.checklist_key = checklist_key
        self.checklist_version = checklist_version

    async def submitted(
        self,
        branch: Doc,
        score: float,
        *,
        critical_failed: bool = False,
        started_at: datetime,
        program_id: str | None = None,
        auditor: Doc | None = None,
        failed_items: list[tuple[str, str, str]] | None = None,
        section_scores: dict[str, float] | None = None,
        checklist_key: str | None = None,
    ) -> Doc:
        """A submitted audit with findings for `failed_items` [(section_id, item_id, severity)]."""
        audit_id = str(uuid.uuid4())
        sections = [
            {"id": s, "score": (section_scores or {}).get(s, score), "max": 10.0, "points": round(score / 10, 2)}
            for s in SECTIONS
        ]
        grade = grade_of(score, critical_failed)
        counts = {"minor": 0, "major": 0, "critical": 0}
        for _, _, severity in failed_items or []:
            counts[severity] += 1
        auditor_id = auditor["_id"] if auditor else "inspector-x"
        auditor_role = auditor["role"] if auditor else "inspector"
        audit: Doc = {
            "_id": audit_id,
            "assignment_id": None,
            "program_id": program_id,
            "branch_id": branch["_id"],
            "region_id": branch["region_id"],
            "branch_timezone": branch.get("timezone"),
            "checklist_key": checklist_key or self.checklist_key,
            "checklist_version": self.checklist_version,
            "channel": "in_branch",
            "covert": auditor_role == "mystery_shopper",
            "auditor_id": auditor_id,
            "auditor_role": auditor_role,
            "auditor_name": auditor.get("display_name") if auditor else "Inspector X",
            "status": "submitted",
            "started_at": started_at,
            "history_key": history_key(started_at, audit_id),
            "checkin": {"at": started_at, "flags": []},
            "answers": {},
            "submitted_at": started_at + timedelta(hours=1),
            "result": {
                "score": score,
                "grade": grade,
                "critical_failed": critical_failed,
                "sections": sections,
                "breakdown": [],
                "rules_version": 1,
            },
            "score": score,
            "grade": grade,
            "critical_failed": critical_failed,
            "finding_counts": counts,
            "open_rectifications": 0,
            "flags": [],
            "created_at": started_at,
            "updated_at": started_at,
        }
        findings = [
            {
                "_id": str(uuid.uuid4()),
                "audit_id": audit_id,
                "branch_id": branch["_id"],
                "region_id": branch["region_id"],
                "program_id": program_id,
                "checklist_key": audit["checklist_key"],
                "item_id": item_id,
                "section_id": section_id,
                "severity": severity,
                "critical": severity == "critical",
                "answer": {"value": False, "na": False, "note": f"note on {item_id}"},
                "photo_ids": [],
                "status": "open",
                "fixed_on_spot": False,
                "covert": audit["covert"],
                "created_at": audit["submitted_at"],
            }
            for section_id, item_id, severity in failed_items or []
        ]

        async def work(uow: UnitOfWork) -> None:
            await uow.db.audits.insert_one(audit, session=uow.session)
            if findings:
                await uow.db.findings.insert_many(findings, session=uow.session)

        await self.services.transact(ActorInfo.system("test"), work)
        return audit

    async def release(self, audit: Doc, released_at: datetime) -> Doc:
        """Release the audit and dispatch audit.released; returns the stored event."""

        async def work(uow: UnitOfWork) -> str:
            await uow.db.audits.update_one(
                {"_id": audit["_id"], "status": "submitted"},
                {"$set": {"status": "released", "released_at": released_at}},
                session=uow.session,
            )
            await uow.db.findings.update_many(
                {"audit_id": audit["_id"]}, {"$set": {"released_at": released_at}}, session=uow.session
            )
            return uow.emit(
                AuditReleased(
                    audit_id=audit["_id"],
                    branch_id=audit["branch_id"],
                    region_id=audit["region_id"],
                    program_id=audit["program_id"],
                    checklist_key=audit["checklist_key"],
                    checklist_version=audit["checklist_version"],
                    score=audit["score"],
                    grade=audit["grade"],
                    critical_failed=audit["critical_failed"],
                    finding_ids=[],
                    released_at=released_at,
                ),
                subject_type="audit",
                subject_id=audit["_id"],
                branch_id=audit["branch_id"],
            )

        event_id = await self.services.transact(ActorInfo.system("test"), work)
        audit.update(status="released", released_at=released_at)
        return await self.dispatch(event_id)

    async def rescore(self, audit: Doc, new_score: float, *, critical_failed: bool | None = None) -> Doc:
        """An appeal overturned something: new score (and maybe critical flag); dispatch audit.rescored."""
        critical = audit["critical_failed"] if critical_failed is None else critical_failed
        old_score, old_grade = audit["score"], audit["grade"]
        new_grade = grade_of(new_score, critical)
        sections = [dict(s, score=new_score, points=round(new_score / 10, 2)) for s in audit["result"]["sections"]]

        async def work(uow: UnitOfWork) -> str:
            await uow.db.audits.update_one(
                {"_id": audit["_id"]},
                {
                    "$set": {
                        "score": new_score,
                        "grade": new_grade,
                        "critical_failed": critical,
                        "result.score": new_score,
                        "result.grade": new_grade,
                        "result.critical_failed": critical,
                        "result.sections": sections,
                    }
                },
                session=uow.session,
            )
            return uow.emit(
                AuditRescored(
                    audit_id=audit["_id"],
                    branch_id=audit["branch_id"],
                    old_score=old_score,
                    new_score=new_score,
                    old_grade=old_grade,
                    new_grade=new_grade,
                    reason="appeal overturned",
                ),
                subject_type="audit",
                subject_id=audit["_id"],
                branch_id=audit["branch_id"],
            )

        event_id = await self.services.transact(ActorInfo.system("test"), work)
        audit.update(score=new_score, grade=new_grade, critical_failed=critical)
        audit["result"].update(sections=sections)
        return await self.dispatch(event_id)

    async def dispatch(self, event_id: str) -> Doc:
        """Hand the stored event to the aggregates handler inside a transaction, as the dispatcher does."""
        event = await self.services.db.events.find_one({"_id": event_id})
        assert event is not None

        async def handle(uow: UnitOfWork) -> None:
            await AGGREGATES.handle(uow, event)

        await self.services.transact(ActorInfo.system(), handle)
        return event

    async def overturn(self, audit: Doc, item_id: str) -> None:
        await self.services.db.findings.update_one(
            {"audit_id": audit["_id"], "item_id": item_id}, {"$set": {"status": "overturned"}}
        )

    async def rectification(self, branch: Doc, **fields: Any) -> Doc:
        doc: Doc = {
            "_id": str(uuid.uuid4()),
            "finding_id": str(uuid.uuid4()),
            "audit_id": str(uuid.uuid4()),
            "branch_id": branch["_id"],
            "region_id": branch["region_id"],
            "item_id": "env_exterior_clean",
            "severity": "minor",
            "status": "open",
            "assignee_id": None,
            "history": [],
            "photo_ids": [],
            "reminder_step": 0,
            "escalation_level": 0,
            "closed_at": None,
            **fields,
        }
        await self.services.db.rectifications.insert_one(doc)
        return doc


async def login_as(api: Any, services: Services, username: str) -> None:
    """Log a demo user in whose password the demo credentials file does not list (it lists one per role)."""
    password = "reports-" + uuid.uuid4().hex
    await services.db.users.update_one(
        {"username": username}, {"$set": {"password_hash": await services.passwords.hash(password)}}
    )
    await api.login(username, password)
