"""The restore drill: phones keep working while a backup is taken; the backup, restored into a second database
server, holds every write acknowledged before it started (photo bytes equal by sha256), its trail verifies
and its report aggregates equal a recomputation."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, FormData
from aiohttp.test_utils import TestServer

from server.app import bootstrap, create_app
from server.backup.create import create_backup
from server.cli import main
from server.clock import FakeClock
from server.context import Services
from server.embedded import EmbeddedMongo
from server.jobs.dispatcher import drain
from server.settings import Settings
from server.storage import photos as photo_store
from tests import image_factory
from tests.audit_factories import ids_by, passing_answers, publish_checklist, start_body
from tests.conftest import Api

pytestmark = pytest.mark.slow
SECRET = "drill-secret-" + "x" * 40  # long enough for the JWT secret check
PHONE_BRANCHES = ("SH-LJZ", "SH-LJZ")  # the demo branch whose head can log in


@dataclass
class Acknowledged:
    """What the server said it stored, and when (time.monotonic of the answer)."""

    audits: dict[str, tuple[float, str]] = field(default_factory=dict)  # id -> (at, status)
    answers: dict[str, float] = field(default_factory=dict)  # audit id -> at
    photos: dict[str, tuple[float, str]] = field(default_factory=dict)  # photo id -> (at, sha256)
    rectifications: dict[str, float] = field(default_factory=dict)  # submitted: id -> at
    failures: list[str] = field(default_factory=list)


@pytest.fixture
async def serving(services: Services, demo: dict[str, dict[str, str]]) -> AsyncIterator[Api]:
    """The application with its background jobs (sequencer, handlers), as in production."""
    app = create_app(services, start_jobs=True, prepare_data=False, close_client=False)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with ClientSession() as session:
        yield Api(session, str(server.make_url("")).rstrip("/"), demo)
    await server.close()


async def upload(api: Api, path: str, who: str, data: bytes, item_id: str | None) -> Any:
    form = FormData()
    if item_id:
        form.add_field("item_id", item_id)
    form.add_field("file", data, filename="photo.jpg", content_type="image/jpeg")
    resp = await api.call("POST", path, who, data=form)
    body = await resp.json(content_type=None)
    assert resp.status == 201, body
    return body


async def phone_audit(api: Api, services: Services, branch_id: str, seed: int, acked: Acknowledged) -> str:
    """One inspector's whole visit through the API: start, answers, two photos, submit; compliance releases."""
    audit_id = str(uuid.uuid4())
    now = services.clock.now()
    await api.json("PUT", f"/api/v1/audits/{audit_id}", "inspector", expect=201, json=start_body(branch_id, now))
    acked.audits[audit_id] = (time.monotonic(), "in_progress")
    await api.json("PATCH", f"/api/v1/audits/{audit_id}/answers", "inspector", expect=200,
                   json=passing_answers(now, hall_clean=False))
    acked.answers[audit_id] = time.monotonic()
    for item_id, n in (("hall_clean", 0), ("lobby_photo", 1)):
        data = image_factory.jpeg(image_factory.noisy_scene(640, 480, seed=seed * 10 + n))
        body = await upload(api, f"/api/v1/audits/{audit_id}/photos", "inspector", data, item_id)
        acked.photos[body["id"]] = (time.monotonic(), hashlib.sha256(data).hexdigest())
    await api.json("POST", f"/api/v1/audits/{audit_id}/submit", "inspector", expect=200)
    acked.audits[audit_id] = (time.monotonic(), "submitted")
    await api.json("POST", f"/api/v1/audits/{audit_id}/release", "compliance", expect=200)
    acked.audits[audit_id] = (time.monotonic(), "released")
    return audit_id


async def fix_rectification(api: Api, services: Services, audit_id: str, seed: int, acked: Acknowledged) -> None:
    """The branch head's side: wait for the released audit's rectification, add the after photo, submit it."""
    for _ in range(400):
        rect = await services.db.rectifications.find_one({"audit_id": audit_id, "status": "open"})
        if rect is not None:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"no rectification opened for audit {audit_id}")
    data = image_factory.jpeg(image_factory.noisy_scene(480, 360, seed=seed * 10 + 7))
    body = await upload(api, f"/api/v1/rectifications/{rect['_id']}/photos", "branch_head", data, None)
    acked.photos[body["id"]] = (time.monotonic(), hashlib.sha256(data).hexdigest())
    await api.json("POST", f"/api/v1/rectifications/{rect['_id']}/submit", "branch_head", expect=200,
                   json={"note": "cleaned and photographed"})
    acked.rectifications[rect["_id"]] = time.monotonic()


async def phone(api: Api, services: Services, branch_id: str, seeds: range, acked: Acknowledged,
                until: asyncio.Event | None) -> int:
    """Visits one after another (the branch head fixing each); with `until`, keeps going until it is set."""
    done = 0
    for seed in seeds:
        if until is not None and until.is_set() and done:
            break
        try:
            audit_id = await phone_audit(api, services, branch_id, seed, acked)
            await fix_rectification(api, services, audit_id, seed, acked)
        except AssertionError as exc:
            acked.failures.append(str(exc)[:300])
            raise
        done += 1
    return done


async def bulk_photo_bytes(services: Services, count: int) -> None:
    """Older photo bytes, so that the backup's photo phase lasts while the phones work."""
    for n in range(count):
        data = hashlib.sha256(str(n).encode()).digest() * (1024 * 1024 // 32)
        file_id = f"history-{n}"

        def read_at(offset: int, size: int, data: bytes = data) -> bytes:
            return data[offset:offset + size]

        await photo_store.write_chunks(services.db, file_id, read_at, len(data))
        await services.db[f"{photo_store.BUCKET}.files"].insert_one(photo_store.file_document(
            file_id, len(data), f"{file_id}.jpg", {"kind": "original"}, services.clock.now()))


async def test_restore_drill(serving: Api, services: Services, settings: Settings, clock: FakeClock,
                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api = serving
    await publish_checklist(services.db)
    branches = await ids_by(services.db, "branches", "code")
    acked = Acknowledged()
    await phone(api, services, branches["SH-LJZ"]["_id"], range(0, 2), acked, None)
    await bulk_photo_bytes(services, 24)

    # The backup starts while two phones are in the middle of their visits, and they keep going until it ends.
    stop = asyncio.Event()
    phones = [asyncio.create_task(phone(api, services, branches[code]["_id"], range(100 * (i + 1), 100 * (i + 2)),
                                        acked, stop))
              for i, code in enumerate(PHONE_BRANCHES)]
    await asyncio.sleep(0.3)
    backup_started = time.monotonic()
    # Paced as an operator would (BACKUP_MAX_MB_S): the 24 MB of photo bytes then take at least 3 s, so on
    # a fast, quiet machine too the backup is still running while the phones' photos are acknowledged.
    manifest = await create_backup(services.client, services.db, tmp_path / "drill", clock=clock, max_mb_s=8.0)
    backup_ended = time.monotonic()
    stop.set()
    done_during = await asyncio.gather(*phones)
    assert not acked.failures and all(done_during), acked.failures
    answered_during = [at for at, _ in acked.photos.values() if backup_started <= at <= backup_ended]
    assert answered_during, "no phone request was answered while the backup ran"
    assert manifest.photo_files >= 24

    # Restore into a second, separate database server.
    second = EmbeddedMongo(":memory:")
    await asyncio.to_thread(second.start)
    try:
        monkeypatch.setenv("MONGODB_URI", second.uri)
        monkeypatch.setenv("DATABASE_NAME", "restored")
        monkeypatch.setenv("JWT_SECRET", SECRET)
        monkeypatch.setenv("LOG_LEVEL", "WARNING")
        assert await asyncio.to_thread(main, ["backup", "restore", str(tmp_path / "drill")]) == 0
        restored_settings = Settings(mongodb_uri=second.uri, database_name="restored", jwt_secret=SECRET,
                                     seed_demo=False, publish_checklists=False, run_jobs=False)
        restored = bootstrap(restored_settings, second.uri, clock=clock)
        try:
            await assert_acknowledged_writes_restored(restored, acked, backup_started)
            # The restored server's sequencer and handlers pick up where the backup's point in time left them.
            await drain(restored)
        finally:
            await restored.client.close()
        assert await asyncio.to_thread(main, ["trail", "verify"]) == 0
        assert await asyncio.to_thread(main, ["reports", "rebuild", "--check"]) == 0
    finally:
        await asyncio.to_thread(second.stop)


async def assert_acknowledged_writes_restored(restored: Services, acked: Acknowledged, started: float) -> None:
    db = restored.db
    order = ["in_progress", "submitted", "released"]
    before = {audit_id: status for audit_id, (at, status) in acked.audits.items() if at < started}
    assert len(before) >= 2
    for audit_id, status in before.items():
        audit = await db.audits.find_one({"_id": audit_id})
        assert audit is not None, audit_id
        assert order.index(audit["status"]) >= order.index(status), (audit_id, audit["status"], status)
    for audit_id, at in acked.answers.items():
        if at < started:
            audit = await db.audits.find_one({"_id": audit_id}, {"answers": 1})
            assert audit is not None and audit["answers"]["hall_clean"]["value"] is False
    photos_before = {pid: sha for pid, (at, sha) in acked.photos.items() if at < started}
    assert len(photos_before) >= 6
    for photo_id, sha in photos_before.items():
        photo = await db.photos.find_one({"_id": photo_id})
        assert photo is not None, photo_id
        chunks = await db[f"{photo_store.BUCKET}.chunks"].find({"files_id": photo["gridfs_id"]}).sort(
            "n", 1).to_list()
        assert hashlib.sha256(b"".join(c["data"] for c in chunks)).hexdigest() == sha == photo["sha256"]
    submitted_before = [rid for rid, at in acked.rectifications.items() if at < started]
    assert submitted_before
    for rect_id in submitted_before:
        rect = await db.rectifications.find_one({"_id": rect_id})
        assert rect is not None and rect["status"] in ("submitted", "verified"), rect_id
