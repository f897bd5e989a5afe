"""PATCH /api/v1/audits/{id}/answers under concurrency and replays: per item the later answered_at wins
whatever the arrival order, concurrent batches lose nothing, a replayed batch changes nothing."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from server.clock import FakeClock
from server.context import Services
from tests.conftest import Api
from tests.test_audits_api import started

ITEMS = ("hall_clean", "atm_working", "greeted", "badge_worn")


def batch(values: dict[str, bool], times: dict[str, datetime]) -> list[dict[str, Any]]:
    return [{"item_id": k, "value": v, "answered_at": times[k].isoformat()} for k, v in values.items()]


async def test_concurrent_conflicting_batches_keep_the_later_answer_of_each_item(
    api: Api, services: Services, clock: FakeClock
) -> None:
    audit_id, _ = await started(api, services, clock)
    t0 = clock.now()
    # Each phone holds the newer version of half the items and the older version of the other half.
    first_times = {item: t0 + timedelta(seconds=10 if n % 2 else 1) for n, item in enumerate(ITEMS)}
    second_times = {item: t0 + timedelta(seconds=1 if n % 2 else 10) for n, item in enumerate(ITEMS)}
    first = batch(dict.fromkeys(ITEMS, True), first_times)
    second = batch(dict.fromkeys(ITEMS, False), second_times)
    path = f"/api/v1/audits/{audit_id}/answers"
    results = await asyncio.gather(
        api.json("PATCH", path, "inspector", expect=200, json=first),
        api.json("PATCH", path, "inspector", expect=200, json=second),
    )
    stored = await services.db.audits.find_one({"_id": audit_id})
    assert stored is not None
    for n, item in enumerate(ITEMS):
        later_value = n % 2 == 1  # the first batch holds the later version of the odd items
        assert stored["answers"][item]["value"] is later_value, item
        assert stored["answers"][item]["answered_at"] == max(first_times[item], second_times[item])
    applied = sum(r["applied"] for r in results)
    # Per item: the later version always lands once; the earlier one only when it arrived first.
    assert len(ITEMS) <= applied <= 2 * len(ITEMS)
    assert stored["answers_rev"] == applied
    trail = await services.db.trail.find({"action": "audit.answer", "entity_id": audit_id}).to_list()
    assert sum(t["summary"]["applied"] for t in trail) == applied


async def test_many_concurrent_batches_on_one_audit_lose_no_item(
    api: Api, services: Services, clock: FakeClock
) -> None:
    audit_id, _ = await started(api, services, clock)
    t0 = clock.now()
    path = f"/api/v1/audits/{audit_id}/answers"
    # Phone n answers item n last; every other item it answers earlier than its owner does.
    batches = [
        [
            {"item_id": item, "value": n == m, "answered_at": (t0 + timedelta(seconds=10 if n == m else m)).isoformat()}
            for m, item in enumerate(ITEMS)
        ]
        for n in range(len(ITEMS))
    ]
    await asyncio.gather(*(api.json("PATCH", path, "inspector", expect=200, json=b) for b in batches))
    stored = await services.db.audits.find_one({"_id": audit_id})
    assert stored is not None
    assert all(stored["answers"][item]["value"] is True for item in ITEMS)


async def test_replay_with_sub_millisecond_times_applies_nothing_and_answers_the_same(
    api: Api, services: Services, clock: FakeClock
) -> None:
    audit_id, _ = await started(api, services, clock)
    at = clock.now().replace(microsecond=123456)  # the database keeps milliseconds
    answers = [{"item_id": item, "value": True, "answered_at": at.isoformat()} for item in ITEMS]
    path = f"/api/v1/audits/{audit_id}/answers"
    first = await api.json("PATCH", path, "inspector", expect=200, json=answers)
    before = await services.db.audits.find_one({"_id": audit_id})
    clock.advance(timedelta(minutes=1))
    replay = await api.json("PATCH", path, "inspector", expect=200, json=answers)
    after = await services.db.audits.find_one({"_id": audit_id})
    assert first["applied"] == len(ITEMS) and replay["applied"] == 0
    assert replay == {**first, "applied": 0} and before == after
    assert before is not None and before["answers_rev"] == len(ITEMS)


async def test_answer_text_that_looks_like_a_field_path_is_stored_verbatim(
    api: Api, services: Services, clock: FakeClock
) -> None:
    audit_id, _ = await started(api, services, clock)
    at = clock.now().isoformat()
    answers = [
        {"item_id": "comments", "value": "$status", "note": "$answers", "answered_at": at},
        {"item_id": "farewell", "value": ["smile", "words"], "answered_at": at},
    ]
    await api.json("PATCH", f"/api/v1/audits/{audit_id}/answers", "inspector", expect=200, json=answers)
    stored = await services.db.audits.find_one({"_id": audit_id})
    assert stored is not None
    assert stored["answers"]["comments"]["value"] == "$status" and stored["answers"]["comments"]["note"] == "$answers"
    assert stored["answers"]["farewell"]["value"] == ["smile", "words"]
