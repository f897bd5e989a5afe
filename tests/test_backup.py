"""Backups: the file format and manifest (no database), the point-in-time read, and a backup restored into
another database comes back byte for byte, photos included."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bson import encode

from server.backup import archive
from server.backup.create import BackupFailed, create_backup, file_groups
from server.backup.manifest import BackupRefused, CollectionEntry, Manifest, TrailHead, check_schema, dump, load
from server.backup.restore import restore_backup, verify_backup
from server.backup.snapshot import SNAPSHOT_SESSION, TRANSACTION, point_in_time
from server.clock import FakeClock
from server.context import ActorInfo, Services, UnitOfWork
from server.jobs.sequencer import sequence_once
from server.storage import photos as photo_store

# --- the file format and the manifest, without a database -------------------------------------------------


def write_collection(path: Path, docs: list[dict[str, Any]]) -> archive.FileDigest:
    writer = archive.CollectionWriter(path, 6)
    writer.write([encode(d) for d in docs])
    return writer.close()


def test_a_collection_file_reads_back_the_same_documents(tmp_path: Path) -> None:
    docs = [{"_id": n, "name": f"branch {n}", "at": datetime(2026, 1, 1, tzinfo=UTC)} for n in range(50)]
    digest = write_collection(tmp_path / "x.bson.gz", docs)
    archive.verify_file(tmp_path / "x.bson.gz", digest, 50)
    assert [bytes(raw) for raw in archive.read_documents(tmp_path / "x.bson.gz")] == [encode(d) for d in docs]


def test_a_flipped_byte_or_a_cut_short_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audits.bson.gz"
    digest = write_collection(path, [{"_id": n, "pad": "x" * 200} for n in range(100)])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(archive.ArchiveDamaged, match=r"audits\.bson\.gz"):
        archive.verify_file(path, digest, 100)
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(archive.ArchiveDamaged, match="cut short"):
        archive.verify_file(path, digest, 100)


def test_a_file_holding_another_count_than_its_manifest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "users.bson.gz"
    digest = write_collection(path, [{"_id": 1}, {"_id": 2}])
    with pytest.raises(archive.ArchiveDamaged, match="holds 2 documents"):
        archive.verify_file(path, digest, 3)


def test_photo_files_are_read_in_groups_of_bounded_size() -> None:
    files = [(f"f{n}", 6 * 1024 * 1024, 1024 * 1024) for n in range(7)] + [(f"s{n}", 10, 1) for n in range(1200)]
    groups = list(file_groups(iter(files)))
    assert [len(g) for g in groups] == [3, 3, 500, 500, 201]  # 16 MB reached after 3 photos; 500 files at most
    assert [f for g in groups for f in g] == files


def manifest(schema_version: int = 1) -> Manifest:
    at = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    entry = CollectionEntry(name="audits", file="audits.bson.gz", documents=3, raw_bytes=300, size=120,
                            sha256="0" * 64, indexes=[{"key": {"_id": {"$numberInt": "1"}}, "name": "_id_"}],
                            options={})
    return Manifest(product_version="0.1.0", schema_version=schema_version, database="branch_audit",
                    started_at=at, finished_at=at + timedelta(seconds=3), snapshot_method=TRANSACTION,
                    collections=[entry], trail=TrailHead(seq=7, hash="a" * 64, unsealed=1), photo_files=0,
                    photo_bytes=0)


def test_the_manifest_round_trips_and_checks_its_own_bytes() -> None:
    text = dump(manifest())
    assert load(text) == manifest()
    altered = text.replace('"documents": 3', '"documents": 4')
    with pytest.raises(BackupRefused, match="checksum"):
        load(altered)
    with pytest.raises(BackupRefused, match="not valid JSON"):
        load(text[: len(text) // 2])
    with pytest.raises(BackupRefused, match="not a branch-audit backup"):
        load(json.dumps({"format": "something-else"}))


def test_a_backup_of_newer_data_than_this_release_understands_is_refused() -> None:
    check_schema(manifest(2), understood=2)
    with pytest.raises(BackupRefused, match="schema version 3, but this release understands up to 2"):
        check_schema(manifest(3), understood=2)


# --- against the database ---------------------------------------------------------------------------------


async def test_the_point_in_time_does_not_see_writes_made_after_it(services: Services) -> None:
    db = services.db
    await db.things.insert_one({"_id": "before"})
    async with point_in_time(services.client, db) as pit:
        assert pit.method in (SNAPSHOT_SESSION, TRANSACTION)
        seen = await db.things.find_one({"_id": "before"}, session=pit.session)
        await db.things.insert_one({"_id": "after"})
        await db.things.update_one({"_id": "before"}, {"$set": {"renamed": True}})
        assert await db.things.find_one({"_id": "after"}, session=pit.session) is None
        assert await db.things.find_one({"_id": "before"}, session=pit.session) == seen
        assert await db.things.count_documents({}, session=pit.session) == 1


async def store_photo_bytes(db: Any, file_id: str, data: bytes, *, with_files_document: bool = True) -> None:
    await photo_store.write_chunks(db, file_id, lambda offset, size: data[offset:offset + size], len(data))
    if with_files_document:
        await db[f"{photo_store.BUCKET}.files"].insert_one(
            photo_store.file_document(file_id, len(data), f"{file_id}.jpg", {"kind": "original"},
                                      datetime(2026, 11, 1, tzinfo=UTC)))


async def record(services: Services, n: int) -> None:
    async def work(uow: UnitOfWork) -> None:
        await uow.db.audits.insert_one({"_id": f"audit-{n}", "status": "in_progress"}, session=uow.session)
        uow.record("audit.start", "audit", f"audit-{n}")

    await services.transact(ActorInfo.system("test"), work)


async def file_bytes(db: Any, file_id: str) -> bytes:
    chunks = await db[f"{photo_store.BUCKET}.chunks"].find({"files_id": file_id}).sort("n", 1).to_list()
    return b"".join(c["data"] for c in chunks)


async def test_a_backup_restored_elsewhere_holds_the_same_documents_and_photo_bytes(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    db = services.db
    for n in range(5):
        await record(services, n)
    await sequence_once(services)
    await record(services, 99)  # recorded, not sealed yet: it travels as a pending trail entry
    photos = {f"file-{n}": hashlib.sha256(f"{n}".encode()).digest() * (40_000 + 30_000 * n) for n in range(3)}
    for file_id, data in photos.items():
        await store_photo_bytes(db, file_id, data)
    await store_photo_bytes(db, "orphan", b"never recorded" * 1000, with_files_document=False)
    await db.leases.insert_one({"_id": "sequencer", "owner": "someone", "until": clock.now()})

    seen: list[str] = []
    made = await create_backup(services.client, db, tmp_path / "b1", clock=clock,
                               progress=lambda stage, done, total: seen.append(stage))
    assert "photos" in seen and not (tmp_path / "b1.partial").exists()
    assert made.photo_files == 3 and made.trail.seq == 5 and made.trail.unsealed == 1
    assert made.collection("leases") is None  # held by running instances, not data
    assert made.collection("audits") is not None and made.collection("audits").documents == 6  # type: ignore[union-attr]
    chunks = made.collection("photos.chunks")
    assert chunks is not None and chunks.documents == sum(-(-len(d) // (1024 * 1024)) for d in photos.values())

    target = services.client[f"{db.name}_restored"]
    try:
        result = await restore_backup(target, tmp_path / "b1", clock=clock)
        assert result.ok, result
        assert result.trail.checked == 5 and result.trail.unsealed == 1
        for name in ("audits", "trail", "trail_chain", "trail_pending", "events", "photos.files"):
            original = await db[name].find({}).sort("_id", 1).to_list()
            assert await target[name].find({}).sort("_id", 1).to_list() == original, name
        for file_id, data in photos.items():
            assert hashlib.sha256(await file_bytes(target, file_id)).digest() == hashlib.sha256(data).digest()
        assert await file_bytes(target, "orphan") == b""
        indexes = await target[f"{photo_store.BUCKET}.chunks"].index_information()
        assert any(spec.get("unique") for spec in indexes.values() if spec["key"][0][0] == "files_id")
        assert await target.restore_in_progress.find_one({}) is None
    finally:
        await services.client.drop_database(target.name)


async def test_a_target_that_is_not_empty_is_refused_unless_forced(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    await record(services, 1)
    await create_backup(services.client, services.db, tmp_path / "b", clock=clock)
    with pytest.raises(BackupRefused, match="not empty"):
        await restore_backup(services.db, tmp_path / "b", clock=clock)
    await services.db.audits.insert_one({"_id": "written after the backup"})
    result = await restore_backup(services.db, tmp_path / "b", clock=clock, force=True)
    assert result.ok
    assert await services.db.audits.find_one({"_id": "written after the backup"}) is None


async def test_a_backup_never_overwrites_another(services: Services, clock: FakeClock, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(BackupFailed, match="already exists"):
        await create_backup(services.client, services.db, tmp_path / "taken", clock=clock)


@pytest.mark.parametrize("damage", ["flip", "truncate", "manifest"])
async def test_a_damaged_backup_is_refused_and_nothing_is_written(
    services: Services, clock: FakeClock, tmp_path: Path, damage: str
) -> None:
    for n in range(3):
        await record(services, n)
    await store_photo_bytes(services.db, "file-a", uuid.uuid4().bytes * 100_000)
    await create_backup(services.client, services.db, tmp_path / "b", clock=clock)
    victim = tmp_path / "b" / ("manifest.json" if damage == "manifest" else "photos.chunks.bson.gz")
    data = bytearray(victim.read_bytes())
    if damage == "truncate":
        victim.write_bytes(bytes(data[: len(data) * 2 // 3]))
    else:
        data[len(data) // 3] ^= 0x20
        victim.write_bytes(bytes(data))
    with pytest.raises(BackupRefused):
        await verify_backup(tmp_path / "b")
    target = services.client[f"{services.db.name}_target"]
    try:
        with pytest.raises(BackupRefused):
            await restore_backup(target, tmp_path / "b", clock=clock)
        assert await target.list_collection_names() == []
    finally:
        await services.client.drop_database(target.name)


async def test_a_photo_whose_bytes_vanished_fails_the_backup_and_leaves_nothing(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    await store_photo_bytes(services.db, "kept", b"k" * 5000)
    await services.db[f"{photo_store.BUCKET}.files"].insert_one(  # its chunks purged after the point in time
        photo_store.file_document("purged", 3000, "purged.jpg", {}, clock.now()))
    with pytest.raises(BackupFailed, match="photo file purged lost its bytes"):
        await create_backup(services.client, services.db, tmp_path / "b", clock=clock)
    assert os.listdir(tmp_path) == []


async def test_the_command_finds_the_database_of_the_server_serving_var_dir(
    tmp_path: Path, mongo_uri: str
) -> None:
    from server.commands.backup import running_database

    if "127.0.0.1:" not in mongo_uri:
        pytest.skip("needs the embedded test database")
    port = int(mongo_uri.split("127.0.0.1:")[1].split("/")[0])
    assert running_database(tmp_path) is None  # nothing serves here
    (tmp_path / "run.json").write_text(json.dumps({"supervisor_pid": os.getpid(), "db_port": port}))
    assert running_database(tmp_path) == f"mongodb://127.0.0.1:{port}/?directConnection=true"
    (tmp_path / "run.json").write_text(json.dumps({"supervisor_pid": 2**22 + 12345, "db_port": port}))
    assert running_database(tmp_path) is None  # a server that died without clearing its state


async def test_the_restore_command_refuses_a_cut_short_backup_in_one_line(
    services: Services, clock: FakeClock, tmp_path: Path, mongo_uri: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    from server.cli import main

    await record(services, 1)
    await store_photo_bytes(services.db, "file-a", uuid.uuid4().bytes * 80_000)
    await create_backup(services.client, services.db, tmp_path / "b", clock=clock)
    chunks = tmp_path / "b" / "photos.chunks.bson.gz"
    chunks.write_bytes(chunks.read_bytes()[:-1000])
    target = f"{services.db.name}_cli"
    monkeypatch.setenv("MONGODB_URI", mongo_uri)
    monkeypatch.setenv("DATABASE_NAME", target)
    monkeypatch.setenv("JWT_SECRET", "restore-test-" + "x" * 40)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    try:
        assert await asyncio.to_thread(main, ["backup", "restore", str(tmp_path / "b")]) == 1
        errors = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("restore: ")]
        assert errors == [f"error: damaged backup: photos.chunks.bson.gz is {chunks.stat().st_size} bytes, the "
                       f"manifest says {chunks.stat().st_size + 1000} (cut short or altered); nothing was written"]
        assert await services.client[target].list_collection_names() == []
    finally:
        await services.client.drop_database(target)


async def test_the_snapshot_session_path_mongod_takes_writes_a_whole_backup(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    """The embedded servers accept a snapshot session without holding it still, so the probe never picks it
    there; forced, it exercises the reads mongod gets (atClusterTime on every find, getMore and aggregate)."""
    for n in range(3):
        await record(services, n)
    await sequence_once(services)
    await store_photo_bytes(services.db, "file-a", b"a" * 3_000_000)
    made = await create_backup(services.client, services.db, tmp_path / "b", clock=clock, method=SNAPSHOT_SESSION)
    assert made.snapshot_method == SNAPSHOT_SESSION and made.trail.seq == 3 and made.photo_files == 1
    target = services.client[f"{services.db.name}_snap"]
    try:
        assert (await restore_backup(target, tmp_path / "b", clock=clock)).ok
    finally:
        await services.client.drop_database(target.name)


async def test_a_paced_backup_reads_photo_bytes_no_faster_than_asked(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    for n in range(4):
        await store_photo_bytes(services.db, f"file-{n}", bytes([n]) * 1_000_000)
    started = time.monotonic()
    made = await create_backup(services.client, services.db, tmp_path / "b", clock=clock, max_mb_s=8.0)
    assert made.photo_files == 4
    assert time.monotonic() - started >= 0.45  # 4 MB at 8 MB/s


async def test_a_backup_that_never_finished_is_refused(services: Services, clock: FakeClock, tmp_path: Path) -> None:
    await record(services, 1)
    await create_backup(services.client, services.db, tmp_path / "b", clock=clock)
    (tmp_path / "b" / "manifest.json").unlink()  # as a backup cut off before its manifest leaves it
    with pytest.raises(BackupRefused, match="has no manifest: not a finished backup"):
        await verify_backup(tmp_path / "b")
    with pytest.raises(BackupRefused, match="not a backup directory"):
        await verify_backup(tmp_path / "nothing-here")
