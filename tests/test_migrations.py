"""Migrations: numbered, applied once across instances (two starting together run each once), idempotent,
data newer than the release refused, and data written before schema versions upgraded and served."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from server import migrations
from server.app import create_app, prepare_database
from server.cli import main
from server.clock import FakeClock
from server.context import Services
from server.db import Database
from server.migrations import COLLECTION, Migration, SchemaError, check_numbering, latest, migrate, pending
from server.settings import Settings
from tests.audit_factories import audit_doc, publish_checklist
from tests.conftest import Api

# --- numbering (no database) -----------------------------------------------------------------------------


async def nothing(services: Services) -> None:
    return None


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    check_numbering(migrations.registered())
    check_numbering([Migration(1, "a", nothing), Migration(2, "b", nothing)])
    for wrong in ([Migration(2, "b", nothing)], [Migration(1, "a", nothing), Migration(3, "c", nothing)],
                  [Migration(1, "a", nothing), Migration(1, "a again", nothing)]):
        with pytest.raises(ValueError, match=r"numbered 1\.\.n"):
            check_numbering(wrong)


def test_pending_is_what_comes_after_the_stored_version() -> None:
    found = [Migration(n, f"m{n}", nothing) for n in (1, 2, 3)]
    assert [m.version for m in pending(0, found)] == [1, 2, 3]
    assert [m.version for m in pending(2, found)] == [3]
    assert pending(3, found) == [] and latest(found) == 3


# --- against the database ---------------------------------------------------------------------------------


async def records(db: Database) -> list[dict[str, Any]]:
    return await db[COLLECTION].find({}).sort("_id", 1).to_list()


async def test_a_second_run_changes_nothing(services: Services, clock: FakeClock) -> None:
    assert await migrate(services) == list(range(1, latest() + 1))
    first = await records(services.db)
    clock.advance(migrations.LEASE_TTL * 2)
    assert await migrate(dataclasses.replace(services, instance_id="b")) == []
    assert await records(services.db) == first
    assert await services.db.leases.find_one({"_id": migrations.LEASE}) is None


def counting_migrations(started: asyncio.Event | None = None) -> list[Migration]:
    """The shipped ones, then one that counts its runs (deliberately not idempotent, so a second run shows)."""

    async def count(services: Services) -> None:
        if started is not None:
            started.set()
        await asyncio.sleep(0.3)  # long enough for the other instance to arrive while it runs
        await services.db.migration_runs.update_one({"_id": "count"}, {"$inc": {"runs": 1}}, upsert=True)

    return [*migrations.registered(), Migration(latest() + 1, "count runs", count)]


async def test_two_instances_starting_together_run_each_migration_once(
    services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = counting_migrations()
    monkeypatch.setattr(migrations, "registered", lambda: shipped)
    a = dataclasses.replace(services, instance_id="instance-a")
    b = dataclasses.replace(services, instance_id="instance-b")
    await asyncio.gather(prepare_database(a), prepare_database(b))
    runs = await services.db.migration_runs.find_one({"_id": "count"})
    assert runs is not None and runs["runs"] == 1
    assert [r["_id"] for r in await records(services.db)] == [m.version for m in shipped]
    assert len({r["by"] for r in await records(services.db)}) == 1


async def test_an_instance_waits_for_the_one_migrating(services: Services, clock: FakeClock) -> None:
    started = asyncio.Event()
    shipped = counting_migrations(started)
    first = asyncio.create_task(migrate(dataclasses.replace(services, instance_id="first"), migrations=shipped))
    await started.wait()
    second = await migrate(dataclasses.replace(services, instance_id="second"), migrations=shipped)
    assert second == [] and await first == [m.version for m in shipped]


async def test_data_newer_than_this_release_is_refused_untouched(services: Services, clock: FakeClock) -> None:
    await migrate(services)
    newer = latest() + 1
    await services.db[COLLECTION].insert_one({"_id": newer, "name": "from a newer release"})
    message = f"schema version {newer}, but this release understands up to {latest()}"
    with pytest.raises(SchemaError, match=message):
        await prepare_database(services)
    with pytest.raises(SchemaError, match=message):
        await migrate(services)
    app = create_app(services, start_jobs=False, prepare_data=False, close_client=False)
    server = TestServer(app, host="127.0.0.1")
    with pytest.raises(SchemaError, match=message):
        await server.start_server()  # a worker that did not prepare the data refuses it too
    await server.close()


async def test_the_cli_refuses_newer_data_in_one_line(
    services: Services, settings: Settings, mongo_uri: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MONGODB_URI", mongo_uri)
    monkeypatch.setenv("DATABASE_NAME", settings.database_name)
    monkeypatch.setenv("JWT_SECRET", "migrate-test-" + "x" * 40)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    assert await asyncio.to_thread(main, ["migrate"]) == 0
    assert f'"schema_version": {latest()}' in capsys.readouterr().out
    await services.db[COLLECTION].insert_one({"_id": latest() + 1, "name": "newer"})
    assert await asyncio.to_thread(main, ["migrate", "--status"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: the database is at schema version")


async def test_a_restore_that_did_not_finish_is_refused(services: Services) -> None:
    await services.db[migrations.RESTORE_MARKER_COLLECTION].insert_one({"_id": "restore"})
    with pytest.raises(SchemaError, match="restore into this database did not finish"):
        await prepare_database(services)


@pytest.fixture
async def served(services: Services, demo: dict[str, dict[str, str]]) -> AsyncIterator[Api]:
    """The application preparing the data at start, as `branch-audit serve` does."""
    app = create_app(services, start_jobs=False, prepare_data=True, close_client=False)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with ClientSession() as session:
        yield Api(session, str(server.make_url("")).rstrip("/"), demo)
    await server.close()


@pytest.fixture
async def written_before_schema_versions(services: Services, demo: dict[str, dict[str, str]]) -> str:
    """An audit stored by a release from before schema versions (no schema_migrations at all)."""
    await publish_checklist(services.db)
    branch = await services.db.branches.find_one({"code": "SH-LJZ"})
    inspector = await services.db.users.find_one({"username": "inspector"})
    assert branch is not None and inspector is not None
    audit_id = str(uuid.uuid4())
    await services.db.audits.insert_one(audit_doc(audit_id, branch=branch, auditor_id=inspector["_id"],
                                                  started_at=services.clock.now()))
    assert await services.db[COLLECTION].count_documents({}) == 0
    return audit_id


async def test_data_written_before_schema_versions_is_upgraded_and_served(
    written_before_schema_versions: str, served: Api, services: Services
) -> None:
    assert [r["_id"] for r in await records(services.db)] == list(range(1, latest() + 1))
    audit = await served.json("GET", f"/api/v1/audits/{written_before_schema_versions}", "compliance", expect=200)
    assert audit["id"] == written_before_schema_versions and audit["status"] == "released"
