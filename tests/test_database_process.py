"""The embedded database as a process: outages answer 503 and recover; data survives restarts and SIGKILL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pymongo
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from pymongo.errors import ExecutionTimeout, NetworkTimeout, OperationFailure, PyMongoError

from server.app import bootstrap, create_app
from server.clock import FakeClock
from server.context import ActorInfo, Services, UnitOfWork
from server.db import connect, ensure_indexes
from server.embedded import EmbeddedDatabaseError, EmbeddedMongo
from server.sessions import cut_off_by_network, release_orphaned_transactions
from server.settings import Settings
from tests.conftest import Api, assert_problem, demo_organisation, reconfigure

pytestmark = pytest.mark.slow


@dataclass
class OwnDatabase:
    server: EmbeddedMongo
    services: Services
    api: Api


@pytest.fixture
async def own(tmp_path: Path, settings: Settings, clock: FakeClock) -> AsyncIterator[OwnDatabase]:
    """An app on its own embedded server with a real data directory, so the test may kill it."""
    server = EmbeddedMongo(str(tmp_path / "db"), log_path=tmp_path / "db.log")
    await asyncio.to_thread(server.start)
    # db_transaction_budget_s: a request's deadline, for all its database calls. auth_cache_s=0: no
    # revocation listener, whose change stream parks a getMore for 10 s that secantusd-rs waits out before it
    # stops (each stop here took 10 s); the authentication cache is tested in test_auth_cache.py.
    settings = settings.model_copy(
        update={"db_timeout_ms": 700, "db_socket_timeout_ms": 1500, "db_transaction_budget_s": 3.0,
                "auth_cache_s": 0}
    )
    services = bootstrap(settings, server.uri, clock=clock)
    await ensure_indexes(services.db)
    credentials = await demo_organisation(services)
    app = create_app(services, start_jobs=False, prepare_data=False, close_client=False)
    http = TestServer(app, host="127.0.0.1")
    await http.start_server()
    async with ClientSession() as session:
        yield OwnDatabase(server, services, Api(session, str(http.make_url("")).rstrip("/"), credentials))
    await http.close()
    await services.client.close()
    await asyncio.to_thread(server.stop)


async def _restart(server: EmbeddedMongo) -> None:
    await asyncio.to_thread(server.start)


async def test_outage_gives_503_then_recovers_by_itself(own: OwnDatabase) -> None:
    api = own.api
    await api.login("admin")
    assert (await api.call("GET", "/readyz")).status == 200
    await asyncio.to_thread(own.server.stop)
    r = await api.call("GET", "/readyz")
    assert r.status == 503
    r = await api.call("GET", "/api/v1/me", "admin")
    body = await r.json(content_type=None)
    assert_problem(r, body, 503)
    assert r.headers["Retry-After"]
    assert "mongo" not in body["detail"].lower()
    await _restart(own.server)
    for _ in range(50):
        if (await api.call("GET", "/readyz")).status == 200:
            break
        await asyncio.sleep(0.2)
    await api.json("GET", "/api/v1/me", "admin", expect=200)


async def test_frozen_database_answers_503_in_bounded_time(own: OwnDatabase) -> None:
    api = own.api
    await api.login("admin")
    own.server.pause()  # SIGSTOP: connections stay open, nothing answers
    try:
        started = asyncio.get_running_loop().time()
        r = await api.call("GET", "/api/v1/me", "admin")
        body = await r.json(content_type=None)
        assert_problem(r, body, 503)
        assert r.headers["Retry-After"]
        r = await api.call("GET", "/readyz")
        assert r.status == 503
        assert asyncio.get_running_loop().time() - started < 8
    finally:
        own.server.resume()
    for _ in range(50):
        if (await api.call("GET", "/readyz")).status == 200:
            break
        await asyncio.sleep(0.2)
    await api.json("GET", "/api/v1/me", "admin", expect=200)


async def test_acknowledged_write_survives_sigkill(own: OwnDatabase) -> None:
    api = own.api
    created = await api.json("POST", "/api/v1/regions", "admin", json={"code": "WEST", "name": "West"}, expect=201)
    # Crash the database immediately after the 201, as a power cut would.
    await asyncio.to_thread(own.server.kill)
    await _restart(own.server)
    for _ in range(50):
        if (await api.call("GET", "/readyz")).status == 200:
            break
        await asyncio.sleep(0.2)
    regions = await api.json("GET", "/api/v1/regions", "admin", expect=200)
    assert created["id"] in {r["id"] for r in regions["items"]}


async def test_data_survives_a_clean_restart(own: OwnDatabase) -> None:
    api = own.api
    await api.json("POST", "/api/v1/regions", "admin", json={"code": "NORTH", "name": "North"}, expect=201)
    await asyncio.to_thread(own.server.stop)
    await _restart(own.server)
    for _ in range(50):
        if (await api.call("GET", "/readyz")).status == 200:
            break
        await asyncio.sleep(0.2)
    regions = await api.json("GET", "/api/v1/regions", "admin", expect=200)
    assert "NORTH" in {r["code"] for r in regions["items"]}


def test_locked_data_directory_is_one_readable_line(tmp_path: Path) -> None:
    first = EmbeddedMongo(str(tmp_path / "db"), log_path=tmp_path / "first.log")
    first.start()
    try:
        second = EmbeddedMongo(str(tmp_path / "db"), log_path=tmp_path / "second.log")
        with pytest.raises(EmbeddedDatabaseError) as info:
            second.start()
        message = str(info.value)
        assert "in use by another process" in message and "\n" not in message
    finally:
        first.stop()


def test_cli_reports_embedded_failure_without_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "var" / "db"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the data directory should be")
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "VAR_DIR": str(tmp_path / "var"), "PORT": "0",
             "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: embedded database")
    assert len(result.stderr.strip().splitlines()) == 1


async def test_transaction_cut_off_by_a_frozen_database_does_not_block_later_writers(own: OwnDatabase) -> None:
    """A transaction whose database froze mid-way outlives its client on the server (connection close does not
    abort it; mongod and SecantusDB reap it after 60 s) and, holding its documents, makes every later
    transaction on them conflict. Seen in `make faults` as 503s on one rectification long after the
    outage. The service kills such sessions once the database answers again."""
    services = own.services
    reconfigure(services, db_transaction_budget_s=3.0)
    await services.db.regions.insert_one({"_id": "contended", "code": "C", "name": "Contended", "n": 0})

    async def bump_then_freeze(uow: UnitOfWork) -> None:
        await uow.db.regions.update_one({"_id": "contended"}, {"$inc": {"n": 1}}, session=uow.session)
        own.server.pause()  # the next statement cannot be answered: the client times out mid-transaction
        await uow.db.regions.find_one({"_id": "contended"}, session=uow.session)

    try:
        with pytest.raises(PyMongoError):
            await services.transact(ActorInfo.system("test"), bump_then_freeze)
    finally:
        own.server.resume()

    async def bump(uow: UnitOfWork) -> None:
        await uow.db.regions.update_one({"_id": "contended"}, {"$inc": {"n": 10}}, session=uow.session)

    await services.transact(ActorInfo.system("test"), bump)  # within its 3 s budget, not 60 s later
    assert services.reaper.killed == 1
    doc = await services.db.regions.find_one({"_id": "contended"})
    assert doc is not None and doc["n"] == 10  # the cut-off increment was never committed


def test_only_network_failures_count_as_cut_off() -> None:
    try:
        try:
            raise NetworkTimeout("socket timed out")
        except NetworkTimeout as inner:
            raise ExecutionTimeout("budget exceeded") from inner
    except ExecutionTimeout as exc:
        assert cut_off_by_network(exc)
    assert not cut_off_by_network(ExecutionTimeout("WriteConflict retries exceeded the budget"))
    assert not cut_off_by_network(OperationFailure("WriteConflict", code=112))


async def test_a_request_has_one_deadline_for_all_its_database_calls(own: OwnDatabase) -> None:
    """Each call alone would wait for the socket timeout; a request making several must still answer 503 by
    its budget, before a phone gives up on it."""
    api = own.api
    await api.login("inspector")
    reconfigure(own.services, db_transaction_budget_s=2.0)
    await own.services.client.close()  # a client whose single calls would wait 20 s
    reconfigure(own.services, db_socket_timeout_ms=20_000)
    own.services.client = connect(own.server.uri, timeout_ms=700, socket_timeout_ms=20_000)
    own.services.db = own.services.client[own.services.settings.database_name]
    own.server.pause()
    try:
        started = asyncio.get_running_loop().time()
        r = await api.call("GET", "/api/v1/assignments?mine=true", "inspector")  # authentication, then a query
        assert_problem(r, await r.json(content_type=None), 503)
        assert asyncio.get_running_loop().time() - started < 4
    finally:
        own.server.resume()


async def test_cut_off_session_is_killed_after_the_request_deadline_passed(services: Services) -> None:
    """The kill is scheduled from inside a request whose database deadline has run out; it must not inherit it."""
    async with services.client.start_session() as session:
        session_id = session.session_id
    with pymongo.timeout(0.2):
        await asyncio.sleep(0.3)
        services.reaper.kill_later(services.client, session_id)
    for _ in range(50):
        if services.reaper.killed:
            break
        await asyncio.sleep(0.1)
    assert services.reaper.killed == 1


async def test_dead_workers_transactions_are_released(services: Services, mongo_uri: str) -> None:
    """A SIGKILLed worker never aborts its transactions; the supervisor aborts them all (embedded database)."""
    await services.db.regions.insert_one({"_id": "orphaned", "code": "O", "name": "Orphaned", "n": 0})
    dead_worker = connect(mongo_uri)
    session = dead_worker.start_session()
    await session.start_transaction()
    await dead_worker[services.settings.database_name].regions.update_one(
        {"_id": "orphaned"}, {"$inc": {"n": 1}}, session=session
    )  # ...and the worker dies here, its transaction open on the server

    await asyncio.to_thread(release_orphaned_transactions, mongo_uri)
    reconfigure(services, db_transaction_budget_s=3.0)

    async def bump(uow: UnitOfWork) -> None:
        await uow.db.regions.update_one({"_id": "orphaned"}, {"$inc": {"n": 10}}, session=uow.session)

    await services.transact(ActorInfo.system("test"), bump)
    doc = await services.db.regions.find_one({"_id": "orphaned"})
    assert doc is not None and doc["n"] == 10
    await dead_worker.close()
