"""The storage functions the commands rely on, against the embedded server: each guard refuses exactly
what the command counts on it to refuse."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pymongo.asynchronous.client_session import AsyncClientSession

from server.context import Services
from server.storage import appeals, audits, photos, rectifications

T = TypeVar("T")


async def in_session(services: Services, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
    async with services.client.start_session() as session:
        return await work(session)


async def test_a_finding_is_claimed_by_one_appeal_at_a_time(services: Services) -> None:
    await services.db.findings.insert_one({"_id": "f1", "status": "open", "pending_appeal_id": None})
    assert await in_session(services, lambda s: appeals.claim_finding(services.db, "f1", "a1", s))
    assert not await in_session(services, lambda s: appeals.claim_finding(services.db, "f1", "a2", s))
    now = services.clock.now()
    await in_session(services, lambda s: appeals.settle_finding(services.db, "f1", True, now, s))
    finding = await services.db.findings.find_one({"_id": "f1"})
    assert finding is not None and finding["status"] == "overturned" and finding["pending_appeal_id"] is None
    # overturned: no longer open, so no new appeal can claim it
    assert not await in_session(services, lambda s: appeals.claim_finding(services.db, "f1", "a3", s))


async def test_an_appeal_is_decided_once(services: Services) -> None:
    await services.db.appeals.insert_one({"_id": "a1", "status": "pending"})
    decided = {"status": "upheld", "comment": "no"}
    assert await in_session(services, lambda s: appeals.decide(services.db, "a1", decided, s))
    assert not await in_session(services, lambda s: appeals.decide(services.db, "a1", {"status": "overturned"}, s))
    stored = await services.db.appeals.find_one({"_id": "a1"})
    assert stored is not None and stored["status"] == "upheld"


async def test_a_rectification_change_applies_only_to_the_state_it_was_read_in(services: Services) -> None:
    rect: dict[str, Any] = {"_id": "r1", "status": "open", "history": [], "next_reminder_at": 1}
    await services.db.rectifications.insert_one(rect)

    async def submit(session: AsyncClientSession) -> dict[str, Any] | None:
        return await rectifications.apply_change(
            services.db, session, rect, set_fields={"status": "submitted"}, history={"action": "submitted"},
            unset=["next_reminder_at"],
        )

    changed = await in_session(services, submit)
    assert changed is not None and changed["status"] == "submitted" and "next_reminder_at" not in changed
    assert len(changed["history"]) == 1
    assert await in_session(services, submit) is None  # read as open, but it is submitted now


async def test_open_findings_come_in_a_stable_order_without_the_overturned(services: Services) -> None:
    await services.db.findings.insert_many([
        {"_id": "f3", "audit_id": "a", "item_id": "x", "status": "open"},
        {"_id": "f1", "audit_id": "a", "item_id": "y", "status": "open"},
        {"_id": "f2", "audit_id": "a", "item_id": "z", "status": "overturned"},
        {"_id": "f4", "audit_id": "b", "item_id": "x", "status": "open"},
    ])
    found = await in_session(services, lambda s: rectifications.open_findings_of(services.db, "a", s))
    assert [f["_id"] for f in found] == ["f1", "f3"]


async def test_flags_are_raised_once_and_photos_taken_only_while_answerable(services: Services) -> None:
    await services.db.audits.insert_one({"_id": "a", "status": "in_progress", "flags": ["gps_mismatch"]})
    for _ in range(2):
        await in_session(services, lambda s: audits.add_flags(services.db, "a", ["answer_clock_ahead"], s))
    audit = await services.db.audits.find_one({"_id": "a"})
    assert audit is not None and audit["flags"] == ["gps_mismatch", "answer_clock_ahead"]
    statuses = ("in_progress", "returned")
    assert await in_session(services, lambda s: photos.audit_takes_photos(services.db, "a", statuses, s))
    await services.db.audits.update_one({"_id": "a"}, {"$set": {"status": "submitted"}})
    assert not await in_session(services, lambda s: photos.audit_takes_photos(services.db, "a", statuses, s))
