"""Released audits with chosen scores for the report tests, and their events handed to the aggregates
handler as the dispatcher would.

A report test chooses each audit's score, grade and failed items, which no set of answers to a real
checklist gives exactly, so the submitted audit is the one the live constructors make (server.domain:
new_audit, new_finding, submitted_changes) with the scorer's output chosen by the test, written through
storage. The release is the service layer's (release_audit, the clock set to the test's release time), and
a re-score is stored and told of by appeals.rescore_in, as an overturned appeal's is. Two shortcuts stay,
for what the report arithmetic reads and no command can choose: `overturn` marks a finding overturned
without an appeal, and `rectification` stores one with the test's dates and status."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from schemas.audits import AuditStart, CheckinLocation
from schemas.checklist import Item
from server.clock import FakeClock
from server.context import ActorInfo, Services, UnitOfWork
from server.db import Doc
from server.domain import audit_rules, audit_start
from server.domain.access import Principal
from server.domain.scoring import ScoreResult, SectionScore
from server.domain.submission import new_finding, submitted_changes
from server.handlers.aggregates import HANDLERS
from server.http.authz import principal_from_user
from server.services import appeals, audits
from server.storage import audits as audit_store

AGGREGATES = next(h for h in HANDLERS if h.name == "aggregates")
SECTIONS = ("environment", "service")
GRADE_BANDS = ((90, "A"), (80, "B"), (70, "C"), (60, "D"))
T = TypeVar("T")


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
    """Submitted audits as the constructors make them; releases and re-scores through the services."""

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
        """A submitted audit with findings for `failed_items` [(section_id, item_id, severity)], at the branch
        (no check-in flags), submitted an hour after `started_at`."""
        who = _auditor(auditor)
        location = CheckinLocation(lat=branch["location"]["lat"], lon=branch["location"]["lon"], accuracy_m=10)
        body = AuditStart(branch_id=branch["_id"], checklist_key=checklist_key or self.checklist_key,
                          started_at=started_at, location=location)
        audit = audit_start.new_audit(
            str(uuid.uuid4()), who=who, body=body, request_doc=body.model_dump(mode="json"), branch=branch,
            assignment=None, checklist_channel="in_branch", checklist_version=self.checklist_version, now=started_at,
        )
        audit["program_id"] = program_id
        submitted_at = started_at + timedelta(hours=1)
        findings = [
            new_finding(audit, item=_failed_item(item_id, severity), section_id=section_id,
                        answer={"value": False, "note": f"note on {item_id}"}, photo_ids=[], now=submitted_at,
                        submission=1)
            for section_id, item_id, severity in failed_items or []
        ]
        scored = _chosen_score(score, critical_failed, section_scores or {})
        audit.update(submitted_changes(scored, findings, submitted_at, 1,
                                       status=audit_rules.next_status(audit["status"], "submit")))

        async def work(uow: UnitOfWork) -> None:
            await audit_store.insert_audit(uow.db, audit, uow.session)
            if findings:
                await audit_store.insert_findings(uow.db, findings, uow.session)

        await self.services.transact(ActorInfo.system("test"), work)
        return audit

    async def release(self, audit: Doc, released_at: datetime) -> Doc:
        """Compliance releases the audit at `released_at` (release_audit); returns its audit.released event,
        handed to the aggregates handler."""
        reviewer = await self.services.db.users.find_one({"role": "compliance"})
        assert reviewer is not None, "the demo organisation has compliance"
        released = await self._at(released_at, lambda: audits.release_audit(
            self.services, principal_from_user(reviewer), audit["_id"]))
        audit.update(status=released["status"], released_at=released["released_at"])
        event = await self.services.db.events.find_one({"type": "audit.released", "payload.audit_id": audit["_id"]})
        assert event is not None
        return await self.dispatch(event["_id"])

    async def rescore(self, audit: Doc, new_score: float, *, critical_failed: bool | None = None) -> Doc:
        """An appeal overturned something: the new score (and maybe critical flag) stored and told of as an
        overturned appeal's re-score is (appeals.rescore_in); audit.rescored dispatched."""
        critical = audit["critical_failed"] if critical_failed is None else critical_failed
        scored = _chosen_score(new_score, critical, {})

        async def work(uow: UnitOfWork) -> str:
            stored = await audit_store.audit(uow.db, audit["_id"], session=uow.session)
            assert stored is not None
            findings = await audit_store.findings_of(uow.db, audit["_id"], session=uow.session)
            return await appeals.rescore_in(uow, stored, scored, findings, "appeal overturned")

        event_id = await self.services.transact(ActorInfo.system("test"), work)
        audit.update(score=scored.score, grade=scored.grade, critical_failed=critical)
        audit["result"].update(sections=[s.model_dump(mode="json") for s in scored.sections])
        return await self.dispatch(event_id)

    async def _at(self, moment: datetime, act: Callable[[], Awaitable[T]]) -> T:
        """Run `act` with the test clock at `moment`, then put the clock back."""
        clock = self.services.clock
        assert isinstance(clock, FakeClock), "report factories move the test clock"
        now = clock.now()
        clock.set(moment)
        try:
            return await act()
        finally:
            clock.set(now)

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


def _auditor(user: Doc | None) -> Principal:
    if user is not None:
        return principal_from_user(user)
    return Principal(user_id="inspector-x", username="inspector-x", role="inspector", display_name="Inspector X",
                     region_id=None, branch_id=None, home_branch_id=None, language="en", session_id="")


def _failed_item(item_id: str, severity: str) -> Item:
    """The checklist item a finding is about, as the report tests name it."""
    text = dict.fromkeys(("zh-CN", "en", "es"), item_id)
    return Item.model_validate({"id": item_id, "type": "yes_no", "text": text, "severity": severity,
                                "critical": severity == "critical"})


def _chosen_score(score: float, critical_failed: bool, section_scores: dict[str, float]) -> ScoreResult:
    """What the scorer would have said, as the test chooses it: each section out of 10 points."""
    sections = [SectionScore(id=s, weight=1.0, score=section_scores.get(s, score), max=10.0,
                             points=round(score / 10, 2)) for s in SECTIONS]
    return ScoreResult(score=score, grade=grade_of(score, critical_failed), critical_failed=critical_failed,
                       sections=sections, breakdown=[], rules_version=1)


async def login_as(api: Any, services: Services, username: str) -> None:
    """Log a demo user in whose password the demo credentials file does not list (it lists one per role)."""
    password = "reports-" + uuid.uuid4().hex
    await services.db.users.update_one(
        {"username": username}, {"$set": {"password_hash": await services.passwords.hash(password)}}
    )
    await api.login(username, password)
