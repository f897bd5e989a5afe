"""Publishing checklists: content hashes decide new versions, old versions stay, events and trail follow."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from schemas.checklist import Checklist
from server.checklists.loading import load_file
from server.checklists.publishing import publish, publish_shipped
from server.context import ActorInfo, Services
from server.storage import checklists as store
from tests.conftest import reconfigure

SHIPPED = Path(__file__).resolve().parents[1] / "checklists"
ADMIN = ActorInfo(user_id="admin-1", role="admin")


def shipped(name: str) -> Checklist:
    checklist = load_file(SHIPPED / f"{name}.yaml").checklist
    assert checklist is not None
    return checklist


def with_item_text(checklist: Checklist, item_id: str, en: str) -> Checklist:
    changed = checklist.model_copy(deep=True)
    item = changed.item(item_id)
    assert item is not None
    item.text.en = en
    return changed


async def test_publishing_the_same_definition_twice_makes_one_version(services: Services) -> None:
    first = await publish(services, shipped("branch-service"), ADMIN)
    again = await publish(services, shipped("branch-service"), ADMIN)
    assert (first.version, first.created) == (1, True)
    assert (again.version, again.created) == (1, False)
    assert await services.db.checklist_versions.count_documents({"key": "branch-service"}) == 1
    events = await services.db.events.find({"type": "checklist.published"}).to_list()
    assert len(events) == 1
    assert events[0]["payload"] == {"key": "branch-service", "version": 1, "content_hash": first.content_hash,
                                    "previous_version": None, "channel": "in_branch", "item_count": 57}
    trail = await services.db.trail.find({"action": "checklist.publish"}).to_list()
    assert [(t["entity_id"], t["actor_id"], t["summary"]["version"]) for t in trail] == [
        ("branch-service", "admin-1", 1)]


async def test_changing_one_item_text_makes_version_2_and_keeps_version_1(services: Services) -> None:
    original = shipped("branch-service")
    await publish(services, original, ADMIN)
    changed = with_item_text(original, "env_hall_clean", "The hall floor and counters are spotless")
    result = await publish(services, changed, ADMIN)
    assert (result.version, result.created) == (2, True)

    v1 = await store.get_version(services.db, "branch-service", 1)
    v2 = await store.get_version(services.db, "branch-service", 2)
    assert v1 is not None and v2 is not None
    assert v1.item("env_hall_clean").text.en == original.item("env_hall_clean").text.en  # type: ignore[union-attr]
    assert v2.item("env_hall_clean").text.en == "The hall floor and counters are spotless"  # type: ignore[union-attr]
    current = await store.get_current(services.db, "branch-service")
    assert current is not None and current[1] == 2
    pointer = await services.db.checklists.find_one({"_id": "branch-service"})
    assert pointer is not None and pointer["current_version"] == 2 and pointer["title"]["zh-CN"] == "网点服务质量检查"
    records = await store.list_versions(services.db, "branch-service")
    assert [(r["_id"], r["published_by"]) for r in records] == [("branch-service@1", "admin-1"),
                                                                ("branch-service@2", "admin-1")]
    assert records[0]["content_hash"] != records[1]["content_hash"]


async def test_reverting_to_old_content_is_a_new_version(services: Services) -> None:
    original = shipped("mystery-call")
    await publish(services, original, ADMIN)
    await publish(services, with_item_text(original, "mc_greeting", "Standard greeting used"), ADMIN)
    reverted = await publish(services, original, ADMIN)
    assert (reverted.version, reverted.created) == (3, True)


async def test_concurrent_publishers_get_distinct_versions(services: Services) -> None:
    original = shipped("mystery-visit")
    variants = [with_item_text(original, "mv_farewell", f"Farewell wording {n}") for n in range(3)]
    results = await asyncio.gather(*(publish(services, v, ADMIN) for v in variants))
    assert sorted(r.version for r in results) == [1, 2, 3]
    assert all(r.created for r in results)
    pointer = await services.db.checklists.find_one({"_id": "mystery-visit"})
    assert pointer is not None and pointer["current_version"] == 3


async def test_unknown_versions_and_keys_are_none(services: Services) -> None:
    await publish(services, shipped("mystery-call"), ADMIN)
    assert await store.get_version(services.db, "mystery-call", 2) is None
    assert await store.get_current(services.db, "no-such-checklist") is None


async def test_start_up_publishes_the_shipped_files_once(services: Services) -> None:
    reconfigure(services, checklists_dir=SHIPPED)
    await publish_shipped(services)
    await publish_shipped(services)
    pointers = await services.db.checklists.find({}, {"current_version": 1}).sort("_id", 1).to_list()
    assert [(p["_id"], p["current_version"]) for p in pointers] == [
        ("branch-service", 1), ("mystery-call", 1), ("mystery-visit", 1)]
    assert await services.db.events.count_documents({"type": "checklist.published"}) == 3


async def test_start_up_skips_invalid_files(services: Services, tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "good.yaml").write_text((SHIPPED / "mystery-call.yaml").read_text(encoding="utf-8"),
                                        encoding="utf-8")
    broken = (SHIPPED / "mystery-visit.yaml").read_text(encoding="utf-8").replace("type: yes_no", "type: tick", 1)
    (tmp_path / "broken.yaml").write_text(broken, encoding="utf-8")
    reconfigure(services, checklists_dir=tmp_path)
    with caplog.at_level(logging.ERROR, logger="branch_audit.checklists"):
        await publish_shipped(services)
    assert [d["_id"] for d in await services.db.checklists.find({}).to_list()] == ["mystery-call"]
    assert any("unknown item type 'tick'" in r.getMessage() for r in caplog.records)
