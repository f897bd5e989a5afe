"""Moving to a replica set, as the README says: `backup create` from the embedded database under VAR_DIR, then
`backup restore` into MONGODB_URI (a second, separate database server stands in for the replica set), then
check it and serve from it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from pathlib import Path

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from server.app import bootstrap, create_app
from server.cli import main
from server.clock import FakeClock
from server.db import ensure_indexes
from server.demo import seed_demo
from server.embedded import EmbeddedMongo
from server.settings import Settings
from server.storage import photos as photo_store
from server.storage import reports
from tests.audit_factories import audit_doc, publish_checklist
from tests.conftest import Api

pytestmark = pytest.mark.slow
SECRET = "move-test-secret-" + "x" * 40


async def test_embedded_data_moves_to_another_server_and_is_served_there(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    var_dir = tmp_path / "var"
    settings = Settings(var_dir=var_dir, jwt_secret=SECRET, seed_demo=False, publish_checklists=False,
                        run_jobs=False, argon2_time_cost=1, argon2_memory_kib=1024)
    # The embedded database of a running installation, with an organisation, an audit and a photo.
    embedded = EmbeddedMongo(str(var_dir / "db"), log_path=tmp_path / "db.log")
    await asyncio.to_thread(embedded.start)
    try:
        services = bootstrap(settings, embedded.uri, clock=clock)
        await ensure_indexes(services.db)
        credentials = await seed_demo(services)
        await publish_checklist(services.db)
        branch = await services.db.branches.find_one({"code": "SH-LJZ"})
        inspector = await services.db.users.find_one({"username": "inspector"})
        assert branch is not None and inspector is not None
        audit_id = str(uuid.uuid4())
        await services.db.audits.insert_one(audit_doc(audit_id, branch=branch, auditor_id=inspector["_id"],
                                                      started_at=clock.now()))
        photo = uuid.uuid4().bytes * 50_000
        await photo_store.write_chunks(services.db, "photo-1", lambda o, s: photo[o:o + s], len(photo))
        await services.db[f"{photo_store.BUCKET}.files"].insert_one(
            photo_store.file_document("photo-1", len(photo), "p.jpg", {}, clock.now()))
        await reports.rebuild(services.db, clock.now())  # the audit was stored without its events
        await services.client.close()
    finally:
        await asyncio.to_thread(embedded.stop)

    monkeypatch.setenv("VAR_DIR", str(var_dir))
    monkeypatch.setenv("JWT_SECRET", SECRET)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    monkeypatch.delenv("MONGODB_URI", raising=False)
    backup = tmp_path / "moving"
    assert await asyncio.to_thread(main, ["backup", "create", str(backup)]) == 0
    taken = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert taken["photo_files"] == 1 and taken["documents"] > 20

    replica_set = EmbeddedMongo(":memory:")
    await asyncio.to_thread(replica_set.start)
    try:
        monkeypatch.setenv("MONGODB_URI", replica_set.uri)
        assert await asyncio.to_thread(main, ["backup", "verify", str(backup)]) == 0
        assert await asyncio.to_thread(main, ["backup", "restore", str(backup)]) == 0
        restored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert restored["ok"] and restored["documents"] == taken["documents"]
        assert await asyncio.to_thread(main, ["trail", "verify"]) == 0
        assert await asyncio.to_thread(main, ["reports", "rebuild", "--check"]) == 0
        # A second restore into the now populated database is refused, and changes nothing.
        assert await asyncio.to_thread(main, ["backup", "restore", str(backup)]) == 1
        assert "not empty" in capsys.readouterr().err

        moved = bootstrap(settings.model_copy(update={"mongodb_uri": replica_set.uri}), replica_set.uri, clock=clock)
        app = create_app(moved, start_jobs=False, prepare_data=True, close_client=False)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            async with ClientSession() as session:
                api = Api(session, str(server.make_url("")).rstrip("/"), credentials)
                me = await api.json("GET", "/api/v1/me", "inspector", expect=200)
                assert me["username"] == "inspector"
                audit = await api.json("GET", f"/api/v1/audits/{audit_id}", "compliance", expect=200)
                assert audit["status"] == "released"
            chunks = await moved.db[f"{photo_store.BUCKET}.chunks"].find({"files_id": "photo-1"}).sort(
                "n", 1).to_list()
            assert hashlib.sha256(b"".join(c["data"] for c in chunks)).digest() == hashlib.sha256(photo).digest()
        finally:
            await server.close()
            await moved.client.close()
    finally:
        await asyncio.to_thread(replica_set.stop)
