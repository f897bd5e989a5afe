"""Data written in a previous stored shape is upgraded by its migration and then served correctly.

Migration 2: rectifications and findings as the history generator wrote them before it used the
workflow's constructors (the demo's released history): a stored `rejected`, no time zone, no history."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any

from server.clock import FakeClock
from server.context import Services
from server.migrations import COLLECTION, latest, migrate, registered
from tests.audit_factories import audit_doc, publish_checklist
from tests.conftest import Api

BASE = "/api/v1/rectifications"
ITEMS = ("hall_clean", "signage", "greeted", "wait_minutes")  # items of the test checklist


def old_finding(audit: dict[str, Any], n: int) -> dict[str, Any]:
    """A finding exactly as the history generator wrote it before commit 0bc5db8."""
    return {
        "_id": str(uuid.uuid4()), "audit_id": audit["_id"], "branch_id": audit["branch_id"],
        "region_id": audit["region_id"], "program_id": None, "checklist_key": audit["checklist_key"],
        "item_id": ITEMS[n], "section_id": "environment", "severity": "major",
        "critical": False, "answer": {"value": False, "na": False, "note": None}, "photo_ids": [], "status": "open",
        "fixed_on_spot": False, "covert": False, "created_at": audit["started_at"],
        "released_at": audit["released_at"],
    }


def old_rectification(finding: dict[str, Any], status: str, released_at: Any, now: Any) -> dict[str, Any]:
    """A rectification exactly as the history generator wrote it before commit 0bc5db8."""
    due_at = released_at + timedelta(days=3)
    closed_at = now - timedelta(hours=2) if status == "verified" else None
    late = (closed_at or now) > due_at
    return {
        "_id": str(uuid.uuid4()), "finding_id": finding["_id"], "audit_id": finding["audit_id"],
        "branch_id": finding["branch_id"], "region_id": finding["region_id"], "item_id": finding["item_id"],
        "severity": finding["severity"], "status": status, "due_at": due_at, "assignee_id": None, "history": [],
        "photo_ids": [], "reminder_step": 0, "escalation_level": 1 if late else 0, "created_at": released_at,
        "closed_at": closed_at, "overdue": late and status in ("open", "rejected"),
    }


async def write_old_history(services: Services) -> dict[str, dict[str, Any]]:
    """A released audit of the demo branch with one old-shape rectification per stored status, in a database
    at schema version 1."""
    db = services.db
    await publish_checklist(db)
    branch = await db.branches.find_one({"code": "SH-LJZ"})
    inspector = await db.users.find_one({"username": "inspector"})
    assert branch is not None and inspector is not None
    now = services.clock.now()
    audit = audit_doc(str(uuid.uuid4()), branch=branch, auditor_id=inspector["_id"],
                      started_at=now - timedelta(days=2), released_at=now - timedelta(days=1))
    await db.audits.insert_one(audit)
    rects = {}
    for n, status in enumerate(("open", "submitted", "rejected", "verified")):
        finding = old_finding(audit, n)
        await db.findings.insert_one(finding)
        rects[status] = old_rectification(finding, status, audit["released_at"], now)
        await db.rectifications.insert_one(rects[status])
    await db[COLLECTION].insert_one({"_id": 1, "name": "baseline", "applied_at": now, "by": "old release"})
    return rects


async def test_generated_history_of_the_previous_shape_is_upgraded_and_served(
    api: Api, services: Services, clock: FakeClock
) -> None:
    rects = await write_old_history(services)
    submitted = f"{BASE}/{rects['submitted']['_id']}"
    # What the previous shape did to the workflow: the audit's inspector could not find it, compliance got a 500.
    resp = await api.call("POST", f"{submitted}/reject", "inspector", json={"comment": "still dirty"})
    assert resp.status == 404
    resp = await api.call("POST", f"{submitted}/reject", "compliance", json={"comment": "still dirty"})
    assert resp.status >= 400  # a 500 (no time zone) when this test was written

    assert await migrate(services) == list(range(2, latest() + 1))

    rejected = await api.json("POST", f"{submitted}/reject", "inspector", expect=200,
                              json={"comment": "still dirty"})
    assert rejected["status"] == "open" and rejected["next_reminder_at"] is not None
    assert [h["action"] for h in rejected["history"]] == ["created", "rejected"]

    reopened = await api.json("GET", f"{BASE}/{rects['rejected']['_id']}", "branch_head", expect=200)
    assert reopened["status"] == "open" and reopened["next_reminder_at"] is not None
    assert [h["action"] for h in reopened["history"]] == ["created", "rejected"]
    assert reopened["due_at"].startswith(rects["rejected"]["due_at"].isoformat()[:19])
    stored = await services.db.rectifications.find_one({"_id": rects["rejected"]["_id"]})
    assert stored is not None and stored["timezone"] == "Asia/Shanghai"
    head = await services.db.users.find_one({"username": "ljz.head"})
    assert head is not None and stored["assignee_id"] == head["_id"]

    verified = await services.db.rectifications.find_one({"_id": rects["verified"]["_id"]})
    assert verified is not None and verified["status"] == "verified" and "next_reminder_at" not in verified
    assert abs(verified["closed_at"] - rects["verified"]["closed_at"]) < timedelta(milliseconds=1)
    listed = await api.json("GET", f"{BASE}?status=open", "branch_head", expect=200)
    assert {rects["open"]["_id"], rects["rejected"]["_id"]} <= {r["id"] for r in listed["items"]}
    finding = await services.db.findings.find_one({"_id": rects["open"]["finding_id"]})
    assert finding is not None and finding["checklist_version"] == 1 and finding["pending_appeal_id"] is None


async def test_the_upgrade_run_again_changes_nothing(services: Services, demo: dict[str, Any]) -> None:
    await write_old_history(services)
    await migrate(services)
    before = await services.db.rectifications.find({}).sort("_id", 1).to_list()
    findings = await services.db.findings.find({}).sort("_id", 1).to_list()
    upgrade = registered()[1]
    await upgrade.apply(dataclasses.replace(services, clock=FakeClock(services.clock.now() + timedelta(days=1))))
    assert await services.db.rectifications.find({}).sort("_id", 1).to_list() == before
    assert await services.db.findings.find({}).sort("_id", 1).to_list() == findings
