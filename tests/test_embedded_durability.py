"""Both embedded servers keep what they acknowledged: writes with j:true and committed transactions survive a
SIGKILL of the database process taken in the middle of a stream of them, as a power cut would."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymongo
import pytest
from pymongo.errors import PyMongoError

from server.embedded import EmbeddedMongo, EmbeddedServer, ServerKind, rust_server_path

pytestmark = pytest.mark.slow

Client = pymongo.MongoClient[dict[str, Any]]


@pytest.fixture(params=["rust", "python"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmbeddedMongo]:
    kind: ServerKind = request.param
    if kind == "rust" and not rust_server_path().exists():
        pytest.skip("secantusd-rs is not built on this machine (make embedded)")
    db = EmbeddedMongo(str(tmp_path / "db"), log_path=tmp_path / "db.log", server=EmbeddedServer.choose(kind))
    db.start()
    yield db
    # Its data goes with tmp_path: a clean shutdown would only wait (2 s on secantusd-py) for nothing.
    db.kill()


def _client(server: EmbeddedMongo) -> Client:
    # As the service writes (server/db.py), without retries: a write cut off by the kill must fail, not wait.
    return pymongo.MongoClient(server.uri, w="majority", journal=True, retryWrites=False,
                               serverSelectionTimeoutMS=2000, socketTimeoutMS=5000)


def _kill_during(server: EmbeddedMongo, write: Callable[[Client, int], None], min_acknowledged: int) -> list[int]:
    """Run `write(client, n)` for n = 0, 1, ... in a thread, SIGKILL the server once `min_acknowledged` were
    acknowledged (so writes are in flight at that moment) and return the numbers that were acknowledged."""
    acknowledged: list[int] = []
    enough = threading.Event()

    def writer() -> None:
        client = _client(server)
        try:
            for n in range(1_000_000):
                write(client, n)
                acknowledged.append(n)
                if len(acknowledged) >= min_acknowledged:
                    enough.set()
        except PyMongoError:
            pass  # the kill
        finally:
            enough.set()
            client.close()

    thread = threading.Thread(target=writer)
    thread.start()
    assert enough.wait(60)
    server.kill()
    thread.join(30)
    assert not thread.is_alive()
    return list(acknowledged)


def test_acknowledged_journaled_inserts_survive_sigkill(server: EmbeddedMongo) -> None:
    def insert(client: Client, n: int) -> None:
        client.t.writes.insert_one({"_id": n, "body": "x" * 200})

    acknowledged = _kill_during(server, insert, 300)
    started = time.monotonic()
    server.start()
    client = _client(server)
    try:
        stored = {doc["_id"] for doc in client.t.writes.find({}, {"_id": 1})}
    finally:
        client.close()
    assert time.monotonic() - started < 30
    assert len(acknowledged) >= 300
    assert set(acknowledged) <= stored, f"lost {len(set(acknowledged) - stored)} acknowledged inserts"


def test_committed_transactions_survive_sigkill(server: EmbeddedMongo) -> None:
    setup = _client(server)
    setup.t.counters.insert_one({"_id": "audits", "n": 0})
    setup.close()

    def transaction(client: Client, n: int) -> None:
        # Three documents in two collections, as a submission writes its audit, findings and event.
        with client.start_session() as session, session.start_transaction():
            client.t.audits.insert_one({"_id": n, "state": "submitted"}, session=session)
            client.t.outbox.insert_one({"_id": n, "type": "audit.submitted"}, session=session)
            client.t.counters.update_one({"_id": "audits"}, {"$inc": {"n": 1}}, session=session)

    acknowledged = _kill_during(server, transaction, 100)
    server.start()
    client = _client(server)
    try:
        audits = {doc["_id"] for doc in client.t.audits.find({}, {"_id": 1})}
        events = {doc["_id"] for doc in client.t.outbox.find({}, {"_id": 1})}
        counter = client.t.counters.find_one({"_id": "audits"})
    finally:
        client.close()
    assert len(acknowledged) >= 100
    assert set(acknowledged) <= audits, f"lost {len(set(acknowledged) - audits)} committed audits"
    assert audits == events, "a transaction was torn: some of its documents survived without the others"
    assert counter is not None and counter["n"] == len(audits)
