"""The hash-chained trail: sealing, verification (edits, deletions, reordering), the CLI and the API."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import timedelta

import pytest

from server.app import bootstrap
from server.cli import main
from server.clock import FakeClock
from server.context import ActorInfo, Services, UnitOfWork
from server.db import Doc
from server.jobs.dispatcher import drain
from server.jobs.sequencer import seal_trail, sequence_once
from server.settings import Settings
from server.storage import trail
from tests.conftest import Api


async def record_entries(services: Services, clock: FakeClock, count: int) -> None:
    for n in range(count):

        async def work(uow: UnitOfWork, n: int = n) -> None:
            uow.record("thing.touch", "thing", f"thing-{n % 3}", {"n": n}, audit_id="audit-1")

        await services.transact(ActorInfo(user_id="u-1", role="admin", request_id=f"r{n}",
                                          client_address="203.0.113.9"), work)
        clock.advance(timedelta(seconds=1))
    await sequence_once(services)


async def by_seq(services: Services, seq: int) -> dict[str, object]:
    """The stored entry sealed at `seq` (as stored: without its seal)."""
    link = await services.db.trail_chain.find_one({"seq": seq})
    assert link is not None
    doc = await services.db.trail.find_one({"_id": link["_id"]})
    assert doc is not None
    return doc


async def sealed_in_order(services: Services) -> list[Doc]:
    links = await services.db.trail_chain.find().sort("seq", 1).to_list()
    entries = await trail.entries_by_ids(services.db, [link["_id"] for link in links])
    return [trail.sealed_view(entries[link["_id"]], link) for link in links]


async def test_sealed_entries_form_an_intact_chain(services: Services, clock: FakeClock) -> None:
    await record_entries(services, clock, 6)
    entries = await sealed_in_order(services)
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5, 6]
    assert [e["summary"] for e in entries] == [{"n": n} for n in range(6)]  # in commit order
    assert entries[0]["prev_hash"] == trail.GENESIS_HASH
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(entries))
    # Sealing only inserts links: the stored entries are exactly what the transactions wrote.
    stored = await services.db.trail.find().to_list()
    assert not any({"seq", "hash", "prev_hash", "seal_pending"} & set(e) for e in stored)
    assert await services.db.trail_pending.count_documents({}) == 0
    result = await trail.verify_chain(services.db)
    assert result.ok and result.checked == 6 and result.head_seq == 6 and result.unsealed == 0


async def test_editing_a_stored_entry_makes_verify_fail_at_that_entry(services: Services, clock: FakeClock) -> None:
    await record_entries(services, clock, 6)
    target = await by_seq(services, 3)
    await services.db.trail.update_one({"_id": target["_id"]}, {"$set": {"summary.n": 99}})
    result = await trail.verify_chain(services.db)
    assert result.broken is not None
    assert (result.broken.seq, result.broken.entry_id, result.broken.problem) == (3, target["_id"], "edited")
    assert result.checked == 2


async def test_an_edit_with_a_recomputed_hash_is_still_caught_at_that_entry(
        services: Services, clock: FakeClock) -> None:
    await record_entries(services, clock, 5)
    target = await by_seq(services, 2)
    link = await services.db.trail_chain.find_one({"seq": 2})
    assert link is not None
    forged = {**target, "actor_id": "someone-else"}
    await services.db.trail.replace_one({"_id": target["_id"]}, forged)
    rehashed = trail.seal(forged, 2, link["prev_hash"])["hash"]
    await services.db.trail_chain.update_one({"seq": 2}, {"$set": {"hash": rehashed}})
    result = await trail.verify_chain(services.db)
    assert result.broken is not None
    assert (result.broken.seq, result.broken.entry_id, result.broken.problem) == (2, target["_id"], "edited")


async def test_deleting_an_entry_is_detected_as_missing(services: Services, clock: FakeClock) -> None:
    await record_entries(services, clock, 5)
    await services.db.trail.delete_one({"_id": (await by_seq(services, 4))["_id"]})
    result = await trail.verify_chain(services.db)
    assert result.broken is not None and (result.broken.seq, result.broken.problem) == (4, "missing")
    assert result.checked == 3


async def test_deleting_an_entry_with_its_link_is_detected_as_missing(
        services: Services, clock: FakeClock) -> None:
    await record_entries(services, clock, 5)
    await services.db.trail.delete_one({"_id": (await by_seq(services, 3))["_id"]})
    await services.db.trail_chain.delete_one({"seq": 3})
    result = await trail.verify_chain(services.db)
    assert result.broken is not None and (result.broken.seq, result.broken.problem) == (3, "missing")


async def test_deleting_the_newest_entry_is_detected_against_the_head(services: Services, clock: FakeClock) -> None:
    await record_entries(services, clock, 4)
    await services.db.trail.delete_one({"_id": (await by_seq(services, 4))["_id"]})
    await services.db.trail_chain.delete_one({"seq": 4})
    result = await trail.verify_chain(services.db)
    assert result.broken is not None and (result.broken.seq, result.broken.problem) == (4, "missing")


async def test_swapping_two_entries_positions_is_detected(services: Services, clock: FakeClock) -> None:
    await record_entries(services, clock, 5)
    second, third = await by_seq(services, 2), await by_seq(services, 3)
    # Swap the two links' positions (seq and what they chain to), as a reordering would.
    await services.db.trail_chain.update_one({"_id": second["_id"]}, {"$set": {"seq": -2}})
    await services.db.trail_chain.update_one({"_id": third["_id"]}, {"$set": {"seq": 2}})
    await services.db.trail_chain.update_one({"_id": second["_id"]}, {"$set": {"seq": 3}})
    result = await trail.verify_chain(services.db)
    assert result.broken is not None and result.broken.seq == 2
    assert result.broken.problem in ("edited", "out_of_order")


async def test_trail_verify_command_names_the_first_broken_link(
        services: Services, clock: FakeClock, settings: Settings, mongo_uri: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    await record_entries(services, clock, 4)
    monkeypatch.setenv("MONGODB_URI", mongo_uri)
    monkeypatch.setenv("DATABASE_NAME", settings.database_name)
    monkeypatch.setenv("JWT_SECRET", "cli-test-secret-" + "x" * 32)  # 32 bytes at least
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    # The command runs its own event loop, so it gets a thread of its own.
    assert await asyncio.to_thread(main, ["trail", "verify"]) == 0
    assert "trail intact: 4 sealed entries verified" in capsys.readouterr().out
    target = await by_seq(services, 2)
    await services.db.trail.update_one({"_id": target["_id"]}, {"$set": {"action": "thing.erase"}})
    assert await asyncio.to_thread(main, ["trail", "verify", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["broken"]["seq"] == 2 and out["broken"]["entry_id"] == target["_id"]
    assert out["broken"]["problem"] == "edited"


async def test_entries_commit_with_the_change_and_are_served_to_compliance(
        api: Api, services: Services, clock: FakeClock) -> None:
    region = await api.json("POST", "/api/v1/regions", who="admin", expect=201,
                            json={"code": "TRAIL", "name": "Trail region"})
    await drain(services, handlers=[])
    page = await api.json("GET", f"/api/v1/trail?entity_id={region['id']}", who="compliance", expect=200)
    [entry] = page["items"]
    assert entry["action"] == "region.create" and entry["entity_type"] == "region"
    assert entry["actor_role"] == "admin" and entry["client_address"] == "127.0.0.1"
    assert entry["request_id"] and entry["sealed"] is True and entry["seq"] >= 1
    await api.json("GET", "/api/v1/trail", who="branch_head", expect=403)
    await api.json("GET", "/api/v1/trail", who="regional_manager", expect=403)

    await record_entries(services, clock, 5)
    ids: list[str] = []
    cursor = ""
    for _ in range(3):
        query = "related_id=audit-1&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await api.json("GET", f"/api/v1/trail?{query}", who="admin", expect=200)
        ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"] or ""
    assert len(ids) == 5 and len(set(ids)) == 5 and cursor == ""
    newest_first = [item["summary"]["n"] for item in (await api.json(
        "GET", "/api/v1/trail?action=thing.touch&limit=5", who="admin", expect=200))["items"]]
    assert newest_first == [4, 3, 2, 1, 0]
    assert (await trail.verify_chain(services.db)).ok


async def test_two_sealers_racing_build_one_intact_chain(
        services: Services, clock: FakeClock, settings: Settings, mongo_uri: str) -> None:
    for start in range(0, 60, 6):

        async def work(uow: UnitOfWork, start: int = start) -> None:
            for n in range(start, start + 6):
                uow.record("thing.touch", "thing", f"thing-{n % 4}", {"n": n})

        await services.transact(ActorInfo(user_id="u-1", role="admin"), work)
    other = bootstrap(settings, mongo_uri, clock=clock)
    try:
        async def run(who: Services) -> None:
            while await seal_trail(who, batch=12):
                pass

        await asyncio.gather(run(services), run(other), run(services), run(other))
        await sequence_once(services)
    finally:
        await other.client.close()
    entries = await sealed_in_order(services)
    assert [e["summary"]["n"] for e in entries] == list(range(60))
    assert [e["seq"] for e in entries] == list(range(1, 61))
    result = await trail.verify_chain(services.db, batch_size=7)
    assert result.ok and result.checked == 60 and result.head_seq == 60 and result.unsealed == 0
