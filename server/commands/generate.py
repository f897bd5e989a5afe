"""`branch-audit generate audits --count N`: synthetic released audit history for demos and benchmarks.

Audits, findings and rectifications are written with insert_many (no events: this is history as if it
had always been there), then the report aggregates are rebuilt. Findings and rectifications come from the
same constructors and workflow changes as the live ones (server.domain.submission, .rectifications), so
each is a document the workflow can produce and every command works on it. A fix handed in has a real
after photo, stored through the photo pipeline as the branch head's upload at that time (demo_photos).
Every branch has a few chronically weak items, so repeat findings and differing scorecards appear."""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from schemas.audits import AuditStart, CheckinLocation
from schemas.checklist import Checklist, Item
from schemas.org import BranchCreate, RegionCreate
from server.commands.demo_photos import HandIn, hand_in_all
from server.context import ActorInfo, Services
from server.db import Doc
from server.domain import answers as answer_rules
from server.domain import audit_rules, audit_start
from server.domain import rectification_rules as rules
from server.domain import rectifications as workflow
from server.domain.access import Principal
from server.domain.rectifications import Actor
from server.domain.scoring import score_audit
from server.domain.submission import build_findings, finding_counts, rescored, submitted_changes
from server.services import organisation as org_commands
from server.settings import Settings
from server.storage import reports
from server.storage.audits import history_key

INSERT_BATCH = 1000
SHIPPED_CHECKLIST = Path(__file__).resolve().parents[2] / "checklists" / "branch-service.yaml"
DUE_DAYS = {"critical": 1, "major": 3, "minor": 7}
# Who verifies a mystery shopper's findings (the shopper never does).
COMPLIANCE = Actor(None, rules.COMPLIANCE)


def register(subparsers: Any) -> None:
    generate = subparsers.add_parser("generate", help="synthetic data").add_subparsers(
        dest="generate_command", required=True
    )
    audits = generate.add_parser("audits", help="write released audits, findings and rectifications")
    audits.add_argument("--count", type=int, required=True, help="audits to write")
    audits.add_argument(
        "--branches",
        type=int,
        default=None,
        help="spread over this many synthetic branches (default: the existing branches)",
    )
    audits.add_argument("--months", type=int, default=24, help="history length, ending now")
    audits.add_argument("--seed", type=int, default=1, help="random seed (same seed, same history)")
    audits.add_argument(
        "--no-fix-photos",
        dest="fix_photos",
        action="store_false",
        help="hand fixes in with photo ids that name no stored photo (benchmarks: each photo costs 20-30 ms)",
    )
    audits.set_defaults(func=cmd_generate_audits)


def cmd_generate_audits(args: argparse.Namespace, settings: Settings) -> int:
    from server.cli import with_database

    async def work(services: Services) -> int:
        started = time.perf_counter()
        summary = await generate_history(
            services, count=args.count, branches=args.branches, months=args.months, seed=args.seed,
            fix_photos=args.fix_photos,
        )
        summary["seconds"] = round(time.perf_counter() - started, 1)
        print(json.dumps(summary))
        return 0

    return with_database(settings, work)


@dataclass
class Org:
    branches: list[Doc]
    auditors: list[tuple[str, str, str]]  # (id, role, display name)
    program_ids: list[str] = field(default_factory=list)


async def ensure_checklist(services: Services) -> tuple[Checklist, int]:
    """The shipped branch-service checklist, published if it is not yet."""
    from server.checklists.loading import load_file
    from server.checklists.publishing import publish
    from server.storage import checklists

    current = await checklists.get_current(services.db, "branch-service")
    if current is not None:
        return current
    loaded = load_file(SHIPPED_CHECKLIST)
    if loaded.checklist is None:
        raise RuntimeError(f"cannot load {SHIPPED_CHECKLIST}: {loaded.problems}")
    result = await publish(services, loaded.checklist, ActorInfo.system("generator"))
    return loaded.checklist, result.version


async def ensure_org(services: Services, branches: int | None, rng: random.Random) -> Org:
    """Synthetic regions and branches when asked for (reused on a second run), else the existing ones."""
    db = services.db
    if branches:
        chosen = await _synthetic_branches(services, branches, rng)
    else:
        chosen = await db.branches.find(
            {"location": {"$exists": True}},
            {"code": 1, "name": 1, "region_id": 1, "timezone": 1, "head_user_id": 1, "location": 1,
             "geofence_m": 1, "branch_type": 1},
        ).to_list()
        if not chosen:
            return await ensure_org(services, 20, rng)
    users = await db.users.find(
        {"role": {"$in": ["inspector", "mystery_shopper"]}}, {"role": 1, "display_name": 1}
    ).to_list()
    auditors = [(u["_id"], u["role"], u.get("display_name") or u["_id"]) for u in users]
    if not auditors:
        auditors = [(f"gen-inspector-{i}", "inspector", f"Generated Inspector {i}") for i in range(5)]
        auditors += [(f"gen-shopper-{i}", "mystery_shopper", f"Generated Shopper {i}") for i in range(5)]
    return Org(chosen, auditors, [f"gen-program-{p}" for p in range(4)])


async def _synthetic_branches(services: Services, count: int, rng: random.Random) -> list[Doc]:
    """GEN-R* regions and GEN-B* branches, made by the operator with the organisation commands (the same
    events and trail entries as the admin API's); those a previous run made are reused by their codes."""
    db = services.db
    region_count = max(2, count // 50)
    regions = {r["code"]: r for r in await db.regions.find({"code": {"$regex": "^GEN-R"}}).to_list()}
    for r in range(region_count):
        code = f"GEN-R{r:03d}"
        if code not in regions:
            regions[code] = await org_commands.create_region(
                services, None, RegionCreate(code=code, name=f"Generated region {r}"))
    existing = {b["code"]: b for b in await db.branches.find({"code": {"$regex": "^GEN-B"}}).to_list()}
    chosen = []
    for b in range(count):
        code = f"GEN-B{b:05d}"
        lat, lon = 31.0 + rng.random(), 121.0 + rng.random()
        region = regions[f"GEN-R{b % region_count:03d}"]
        if code not in existing:
            existing[code] = await org_commands.create_branch(services, None, BranchCreate.model_validate({
                "code": code, "name": f"Generated branch {b}", "region_id": region["_id"],
                "address": f"{b} Generated Street", "location": {"lat": lat, "lon": lon},
                "timezone": "Asia/Shanghai" if b % 3 else "Europe/Madrid",
                "opening_hours": {"open": "09:00", "close": "17:00", "weekdays": [0, 1, 2, 3, 4]},
            }))
        chosen.append(existing[code])
    return chosen


def _started(
    branch: Doc, auditor_id: str, auditor_role: str, auditor_name: str, checklist: Checklist, version: int,
    started_at: datetime, rng: random.Random,
) -> Doc:
    """The audit a start at the branch makes (now and then checked in 2 km away, which is flagged)."""
    who = Principal(user_id=auditor_id, username=auditor_id, role=auditor_role, display_name=auditor_name,
                    region_id=None, branch_id=None, home_branch_id=None, language="en", session_id="")
    lat, lon = branch["location"]["lat"], branch["location"]["lon"]
    if rng.random() < 0.02:
        lat += 0.02
    body = AuditStart(branch_id=branch["_id"], checklist_key=checklist.key, started_at=started_at,
                      location=CheckinLocation(lat=lat, lon=lon, accuracy_m=10))
    return audit_start.new_audit(
        str(uuid.uuid4()), who=who, body=body, request_doc=body.model_dump(mode="json"), branch=branch,
        assignment=None, checklist_channel=checklist.channel, checklist_version=version, now=started_at,
    )


def _value(item: Item, passes: bool) -> Any:
    """An answer to `item` that meets its standard, or one that does not (where it can fail at all)."""
    if item.type == "yes_no":
        return passes
    if item.type == "rating" and item.scale is not None:
        return item.scale.max if passes or item.scale.min >= item.scale.pass_at else item.scale.min
    rule = item.rule()
    if item.type in ("number", "timer") and rule is not None:
        below, above = rule.value - 1, rule.value + 1
        if rule.op in ("<", "<="):
            return below if passes else above
        if rule.op in (">", ">="):
            return above if passes else below
        return rule.value if passes else above
    if item.options:
        passing = [o.id for o in item.options if o.passing]
        failing = [o.id for o in item.options if not o.passing] or passing
        chosen = passing[0] if passes else failing[0]
        return [chosen] if item.type == "multi_choice" else chosen
    return "as expected"


def _rectification(
    services: Services,
    finding: Doc,
    audit: Doc,
    branch: Doc,
    checklist: Checklist,
    released_at: datetime,
    now: datetime,
    rng: random.Random,
) -> Doc | HandIn:
    """A rectification as the workflow leaves it: made by the one constructor when the audit was released,
    then taken through the workflow's own changes (submitted, verified, rejected back to open, cancelled).
    A fix that was handed in comes back as a HandIn: its after photo is stored first, then it is finished."""
    policy = services.reminder_policy
    rect = workflow.new_rectification(
        finding=finding, audit=audit, branch=branch, checklist=checklist, released_at=released_at,
        now=released_at, policy=policy, eod=services.due_end_of_day,
    )
    if rect["status"] != rules.OPEN:  # fixed on the spot: verified at once
        return rect
    head = Actor(branch.get("head_user_id"), rules.BRANCH_HEAD)
    verifier = Actor(audit["auditor_id"], rules.INSPECTOR) if audit["auditor_role"] == "inspector" else COMPLIANCE
    age_days = (now - released_at).days
    roll = rng.random()
    if finding["status"] == "overturned":
        at = min(released_at + timedelta(days=rng.uniform(1, 5)), now)
        return workflow.cancelled(rect, workflow.SYSTEM, "finding overturned on appeal", at).applied_to(rect)

    def scheduled(rect: Doc) -> Doc:
        if rect["status"] == rules.OPEN:
            # The reminders a sweep would have sent by now: the schedule as it stands at `now`.
            rect.update(workflow.schedule_fields(policy, rect["due_at"], now, rect["timezone"]))
            if rect["overdue"]:
                rect["escalation_level"] = 1 + int(roll * 2)
        return rect

    if age_days > 14 or roll < 0.5:
        closed_at = released_at + timedelta(hours=rng.uniform(2, 24 * DUE_DAYS[finding["severity"]] * 1.6))
        closed_at = min(closed_at, now)
        submitted_at = released_at + (closed_at - released_at) * 0.7
        return _handed_in(rect, branch, head, submitted_at,
                          lambda done: workflow.verified(done, verifier, "fixed", closed_at).applied_to(done))
    outcome = rng.choice(["open", "submitted", "rejected"])
    if outcome == "open":
        return scheduled(rect)
    submitted_at = released_at + (now - released_at) * rng.uniform(0.2, 0.6)

    def verdict(done: Doc) -> Doc:
        if outcome == "rejected":
            rejected_at = submitted_at + (now - submitted_at) * 0.5
            new_due = workflow.rejection_deadline(done, None, rejected_at, services.due_end_of_day)
            done = workflow.rejected(done, verifier, "not fixed yet", new_due, policy, rejected_at).applied_to(done)
        return scheduled(done)

    return _handed_in(rect, branch, head, submitted_at, verdict)


def _handed_in(rect: Doc, branch: Doc, head: Actor, at: datetime, then: Callable[[Doc], Doc]) -> HandIn:
    """The branch head uploads an after photo (a real one, through the photo pipeline) and hands in the fix;
    `then` is what the verifier did next."""

    def finish(with_photo: Doc) -> Doc:
        return then(workflow.submitted(with_photo, head, "fixed", at).applied_to(with_photo))

    return HandIn(rect, branch, head.user_id, at, finish)


async def generate_history(
    services: Services,
    *,
    count: int,
    branches: int | None = None,
    months: int = 24,
    seed: int = 1,
    rebuild: bool = True,
    fix_photos: bool = True,
) -> dict[str, Any]:
    """Write `count` audits (about 95% released) with their findings and rectifications."""
    rng = random.Random(seed)
    db = services.db
    now = services.clock.now()
    checklist, version = await ensure_checklist(services)
    org = await ensure_org(services, branches, rng)
    every_item = [(section.id, item) for section in checklist.sections for item in section.items]
    items = [(section_id, item) for section_id, item in every_item if item.scored]
    # each branch has its own few chronic weaknesses; elsewhere items fail rarely
    weak = {b["_id"]: set(rng.sample([i.id for _, i in items], k=min(3, len(items)))) for b in org.branches}
    span = timedelta(days=30 * months)
    audits: list[Doc] = []
    findings: list[Doc] = []
    rects: list[Doc] = []
    written = {"audits": 0, "findings": 0, "rectifications": 0}
    hand_ins: list[HandIn] = []

    async def flush() -> None:
        by_id = {audit["_id"]: audit for audit in audits}
        for rect in await hand_in_all(services, hand_ins, photos=fix_photos):
            by_id[rect["audit_id"]]["open_rectifications"] += rect["status"] in rules.ACTIVE
            written["rectifications"] += 1
        hand_ins.clear()
        for collection, docs in (("audits", audits), ("findings", findings), ("rectifications", rects)):
            if docs:
                await db[collection].insert_many(docs, ordered=False)
                written[collection] += len(docs)
                docs.clear()

    for _ in range(count):
        branch = rng.choice(org.branches)
        auditor_id, auditor_role, auditor_name = rng.choice(org.auditors)
        released = rng.random() < 0.95
        started_at = now - span * rng.random() - timedelta(days=2)
        submitted_at = started_at + timedelta(minutes=rng.randint(30, 120))
        released_at = submitted_at + timedelta(hours=rng.randint(2, 72)) if released else None
        failed = {
            i.id
            for _, i in items
            if rng.random() < (0.45 if i.id in weak[branch["_id"]] else (0.01 if i.critical else 0.06))
        }
        # Started, answered, submitted and released as the commands would, on the same constructors.
        audit = _started(branch, auditor_id, auditor_role, auditor_name, checklist, version, started_at, rng)
        audit["program_id"] = rng.choice(org.program_ids)
        audit["history_key"] = history_key(started_at, audit["_id"])
        answers = {
            item.id: answer_rules.stored_answer(
                {"value": _value(item, item.id not in failed), "answered_at": started_at,
                 "fixed_on_spot": item.id in failed and auditor_role == "inspector" and rng.random() < 0.1},
                started_at,
            )
            for _, item in every_item
            if item.type != "photo"
        }
        audit.update(answers=answers, answers_rev=len(answers))
        scored = score_audit(checklist, audit_rules.answers_of(answers), branch_type=audit.get("branch_type"),
                             channel=audit["channel"])
        audit_findings = build_findings(audit, checklist, scored, {}, submitted_at, 1)
        audit.update(submitted_changes(scored, audit_findings, submitted_at, 1,
                                       status=audit_rules.next_status(audit["status"], "submit")))
        if released_at is not None:
            audit.update(status=audit_rules.next_status(audit["status"], "release"), released_at=released_at,
                         updated_at=released_at)
            for finding in audit_findings:
                finding["released_at"] = released_at
                if rng.random() < 0.02:  # overturned on appeal, the audit scored again
                    finding["status"] = "overturned"
            overturned = {f["item_id"] for f in audit_findings if f["status"] == "overturned"}
            if overturned:
                again = rescored(checklist, audit, overturned)
                result = {**again.model_dump(mode="json"), "findings": audit["result"]["findings"]}
                audit.update(result=result, score=again.score, grade=again.grade,
                             critical_failed=again.critical_failed, finding_counts=finding_counts(audit_findings))
        open_rects = 0
        for finding in audit_findings:
            findings.append(finding)
            if released_at is not None:
                rect = _rectification(services, finding, audit, branch, checklist, released_at, now, rng)
                if isinstance(rect, HandIn):  # counted on its audit once finished (flush)
                    hand_ins.append(rect)
                    continue
                open_rects += rect["status"] in rules.ACTIVE
                rects.append(rect)
        audit["open_rectifications"] = open_rects
        audits.append(audit)
        if len(audits) >= INSERT_BATCH:
            await flush()
    await flush()
    summary: dict[str, Any] = {**written, "branches": len(org.branches)}
    if rebuild:
        summary["aggregates"] = await reports.rebuild(db, now)
    return summary
