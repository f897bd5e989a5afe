"""Photo evidence through the real HTTP API: uploads, dedup, refusals, serving, thumbnails, flags, retention."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import FormData
from PIL import Image

from server.clock import FakeClock
from server.context import ActorInfo, Services, UnitOfWork
from server.handlers.photos import HANDLERS
from server.photos import fraud
from server.photos.retention import purge_photos
from server.storage import photos as store
from tests import image_factory as f
from tests.conftest import Api, assert_problem

# The test clock is 2026-11-02 01:00 UTC (09:00 in Shanghai); the visit started 20 minutes earlier.
STARTED = datetime(2026, 11, 2, 0, 40, tzinfo=UTC)
TAKEN_LOCAL = datetime(2026, 11, 2, 8, 55)  # Shanghai time: 00:55 UTC


async def upload(api: Api, audit_id: str, data: bytes, *, item_id: str | None = "entrance_clean",
                 who: str = "inspector", filename: str = "photo.jpg",
                 content_type: str = "image/jpeg") -> tuple[int, Any]:
    form = FormData()
    if item_id is not None:
        form.add_field("item_id", item_id)
    form.add_field("file", data, filename=filename, content_type=content_type)
    resp = await api.call("POST", f"/api/v1/audits/{audit_id}/photos", who, data=form)
    return resp.status, await resp.json(content_type=None)


async def doc_of(services: Services, collection: str, doc_id: str) -> dict[str, Any]:
    found = await services.db[collection].find_one({"_id": doc_id})
    assert found is not None, (collection, doc_id)
    return found


async def stored_counts(services: Services) -> tuple[int, int, int]:
    db = services.db
    return (await db.photos.count_documents({}), await db["photos.files"].count_documents({}),
            await db["photos.chunks"].count_documents({}))


async def test_post_audit_photo_stores_bytes_metadata_and_event(api: Api, services: Services) -> None:
    audit = await f.seed_audit(services.db, started_at=STARTED)
    data = f.phone_jpeg(taken=TAKEN_LOCAL, orientation=6)
    status, body = await upload(api, audit["_id"], data)
    assert status == 201, body
    assert body["sha256"] == hashlib.sha256(data).hexdigest() and body["size"] == len(data)
    assert (body["media_type"], body["width"], body["height"], body["orientation"]) == ("image/jpeg", 640, 480, 6)
    assert body["captured_at"] == "2026-11-02T00:55:00Z" and body["captured_at_source"] == "exif_offset"
    assert body["gps"] == pytest.approx({"lat": f.LUJIAZUI[0], "lon": f.LUJIAZUI[1]})
    assert body["device"] == {"make": "Apple", "model": "iPhone 15 Pro"}
    assert body["flags"] == [] and body["item_id"] == "entrance_clean" and body["owner_type"] == "audit"
    files = await services.db["photos.files"].find_one({"_id": f"photo:{body['id']}"})
    assert files is not None and files["chunkSize"] == 1024 * 1024 and files["length"] == len(data)
    event = await services.db.events.find_one({"type": "photo.uploaded"})
    assert event is not None and event["payload"]["photo_id"] == body["id"]
    assert await services.db.trail.count_documents({"action": "photo.upload", "entity_id": body["id"]}) == 1
    assert await store.count_by_item(services.db, audit["_id"]) == {"entrance_clean": 1}


async def test_a_retried_upload_returns_the_same_photo_with_200(api: Api, services: Services) -> None:
    audit = await f.seed_audit(services.db, started_at=STARTED)
    data = f.phone_jpeg(taken=TAKEN_LOCAL)
    first_status, first = await upload(api, audit["_id"], data)
    again_status, again = await upload(api, audit["_id"], data)
    assert (first_status, again_status) == (201, 200)
    assert again["id"] == first["id"]
    assert await stored_counts(services) == (1, 1, 1)
    other_status, other = await upload(api, audit["_id"], data, item_id="queue_length")
    assert other_status == 201 and other["id"] != first["id"]  # another item: its own photo


@pytest.mark.parametrize(("make", "media_type"), [(f.png, "image/png"), (f.webp, "image/webp"),
                                                  (f.heic, "image/heic")])
async def test_png_webp_and_heic_are_accepted(api: Api, services: Services, make: Any, media_type: str) -> None:
    audit = await f.seed_audit(services.db, started_at=STARTED)
    status, body = await upload(api, audit["_id"], make(exif=f.exif_bytes(taken=TAKEN_LOCAL, gps=f.LUJIAZUI)),
                                filename="x.bin", content_type="application/octet-stream")
    assert status == 201, body
    assert body["media_type"] == media_type and body["flags"] == []


@pytest.mark.parametrize(("data", "filename", "status"), [
    (b"", "empty.jpg", 422),
    (f.HTML_PAGE, "innocent.jpg", 415),
    (f.truncated_jpeg(), "cut.jpg", 422),
    (f.png_declaring(50_000, 50_000), "bomb.png", 422),
    (f.jpeg_with_html_appended(), "polyglot.jpg", 422),
    (f.jpeg_with_zip_appended(), "polyglot.jpg", 422),
    (f.jpeg_with_prefix(), "prefixed.jpg", 415),
])
async def test_hostile_uploads_are_refused_naming_the_field_and_store_nothing(
        api: Api, services: Services, data: bytes, filename: str, status: int) -> None:
    audit = await f.seed_audit(services.db, started_at=STARTED)
    form = FormData()
    form.add_field("item_id", "entrance_clean")
    form.add_field("file", data, filename=filename, content_type="image/jpeg")
    resp = await api.call("POST", f"/api/v1/audits/{audit['_id']}/photos", "inspector", data=form)
    body = await resp.json(content_type=None)
    assert_problem(resp, body, status)
    assert body["errors"][0]["loc"] == ["body", "file"]
    assert await stored_counts(services) == (0, 0, 0)
    assert (await doc_of(services, "audits", audit["_id"]))["flags"] == []


async def test_a_25_mb_upload_is_refused_with_413_while_streaming(api: Api, services: Services) -> None:
    audit = await f.seed_audit(services.db, started_at=STARTED)
    big = f.oversized_bytes(25 * 1024 * 1024)
    boundary = "photo-boundary-7f3a"
    sent = 0

    async def body() -> Any:  # chunked transfer: no Content-Length, so the limit is enforced on the stream
        nonlocal sent
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"item_id\"\r\n\r\nentrance_clean\r\n"
               f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"huge.jpg\"\r\n"
               "Content-Type: image/jpeg\r\n\r\n").encode()
        for start in range(0, len(big), 256 * 1024):
            sent += 256 * 1024
            yield big[start:start + 256 * 1024]
        yield f"\r\n--{boundary}--\r\n".encode()

    resp = await api.call("POST", f"/api/v1/audits/{audit['_id']}/photos", "inspector", data=body(),
                          headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    body_json = await resp.json(content_type=None)
    assert_problem(resp, body_json, 413)
    assert body_json["errors"][0]["loc"] == ["body", "file"]
    assert await stored_counts(services) == (0, 0, 0)
    declared = FormData()
    declared.add_field("file", io.BytesIO(big), filename="huge.jpg", content_type="image/jpeg")
    resp = await api.call("POST", f"/api/v1/audits/{audit['_id']}/photos", "inspector", data=declared)
    assert resp.status == 413


async def test_upload_rules_item_owner_and_state(api: Api, services: Services) -> None:
    audit = await f.seed_audit(services.db, started_at=STARTED)
    data = f.phone_jpeg(taken=TAKEN_LOCAL)
    status, body = await upload(api, audit["_id"], data, item_id=None)
    assert status == 422 and body["errors"][0]["loc"] == ["body", "item_id"]
    status, body = await upload(api, audit["_id"], data, item_id="Not An Id")
    assert status == 422
    status, _ = await upload(api, audit["_id"], data, who="branch_head")
    assert status == 403  # role may not upload to audits at all
    others = await f.seed_audit(services.db, started_at=STARTED, auditor="inspector2")
    status, _ = await upload(api, others["_id"], data)
    assert status == 404  # another inspector's audit does not exist for this one
    submitted = await f.seed_audit(services.db, started_at=STARTED, status="submitted")
    status, body = await upload(api, submitted["_id"], data)
    assert status == 409, body
    resp = await api.call("POST", f"/api/v1/audits/{audit['_id']}/photos", "inspector", data=b"raw",
                          headers={"Content-Type": "image/jpeg"})
    assert resp.status == 415


async def test_get_photo_has_strong_etag_304_and_ranges(api: Api, services: Services) -> None:
    audit = await f.seed_audit(services.db, started_at=STARTED)
    data = f.phone_jpeg(taken=TAKEN_LOCAL)
    _, body = await upload(api, audit["_id"], data)
    path = f"/api/v1/photos/{body['id']}"
    resp = await api.call("GET", path, "inspector")
    assert resp.status == 200 and await resp.read() == data
    etag = resp.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert "private" in resp.headers["Cache-Control"] and resp.headers["Accept-Ranges"] == "bytes"
    assert resp.content_type == "image/jpeg"
    resp = await api.call("GET", path, "inspector", headers={"If-None-Match": etag})
    assert resp.status == 304 and await resp.read() == b""
    resp = await api.call("GET", path, "inspector", headers={"Range": "bytes=100-199"})
    assert resp.status == 206 and await resp.read() == data[100:200]
    assert resp.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    resp = await api.call("GET", path, "inspector", headers={"Range": "bytes=-50"})
    assert resp.status == 206 and await resp.read() == data[-50:]
    resp = await api.call("GET", path, "inspector", headers={"Range": f"bytes={len(data)}-"})
    assert resp.status == 416 and resp.headers["Content-Range"] == f"bytes */{len(data)}"
    resp = await api.call("GET", path, "inspector", headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert resp.status == 200 and await resp.read() == data


async def test_branch_roles_get_bytes_without_gps_or_device_and_upright(api: Api, services: Services) -> None:
    audit = await f.seed_audit(services.db, started_at=STARTED)
    data = f.phone_jpeg(taken=TAKEN_LOCAL, orientation=6)
    _, body = await upload(api, audit["_id"], data)
    path = f"/api/v1/photos/{body['id']}"
    resp = await api.call("GET", path, "branch_head")
    assert resp.status == 404  # not released yet: the branch cannot see the audit
    await services.db.audits.update_one({"_id": audit["_id"]}, {"$set": {"status": "released"}})
    etags = set()
    for role in ("branch_head", "regional_manager"):
        resp = await api.call("GET", path, role)
        assert resp.status == 200
        served = await resp.read()
        with Image.open(io.BytesIO(served)) as image:
            exif = image.getexif()
            assert exif.get_ifd(0x8825) == {} and 0x010F not in exif and 0x0110 not in exif
            assert image.size == (480, 640)  # orientation 6 applied
        assert b"Apple" not in served and b"iPhone" not in served
        etags.add(resp.headers["ETag"])
        meta = await api.json("GET", path + "/meta", role, expect=200)
        assert meta["gps"] is None and meta["device"] is None
    original = await api.call("GET", path, "compliance")
    assert await original.read() == data and original.headers["ETag"] not in etags
    assert len(etags) == 1
    assert (await api.json("GET", path + "/meta", "compliance", expect=200))["gps"] is not None
    files = await services.db["photos.files"].count_documents({"metadata.kind": "sanitized"})
    assert files == 1  # made once, then served from GridFS
    other_head = await api.login("ja.head", await _password(api, services, "ja.head"))
    assert other_head["user"]["username"] == "ja.head"
    assert (await api.call("GET", path, "ja.head")).status == 404


async def _password(api: Api, services: Services, username: str) -> str:
    # Demo credentials hold one user per role; give another branch head a known password.
    password = "other-head-password"
    await services.db.users.update_one({"username": username},
                                       {"$set": {"password_hash": await services.passwords.hash(password)}})
    return password


async def test_thumbnails_are_made_by_the_event_handler_or_on_demand(api: Api, services: Services) -> None:
    audit = await f.seed_audit(services.db, started_at=STARTED)
    data = f.phone_jpeg(taken=TAKEN_LOCAL, size=(2000, 1500))
    _, first = await upload(api, audit["_id"], data)
    resp = await api.call("GET", f"/api/v1/photos/{first['id']}/thumbnail?size=1280", "inspector")
    assert resp.status == 200 and resp.content_type == "image/jpeg"
    with Image.open(io.BytesIO(await resp.read())) as thumb:
        assert thumb.size == (1280, 960)
    assert (await api.call("GET", f"/api/v1/photos/{first['id']}/thumbnail?size=999", "inspector")).status == 422

    _, second = await upload(api, audit["_id"], f.phone_jpeg(taken=TAKEN_LOCAL, seed=9), item_id="queue_length")
    event = await services.db.events.find_one({"type": "photo.uploaded", "payload.photo_id": second["id"]})
    assert event is not None
    (handler,) = HANDLERS
    assert handler.name == "photo-thumbnails"

    async def run(uow: UnitOfWork) -> None:
        await handler.handle(uow, event)

    await services.transact(ActorInfo.system("dispatcher"), run)
    await services.transact(ActorInfo.system("dispatcher"), run)  # delivered twice: still one of each
    doc = await doc_of(services, "photos", second["id"])
    assert set(doc["thumbnails"]) == {"320", "1280"}
    assert await services.db["photos.files"].count_documents({"metadata.photo_id": second["id"]}) == 3
    resp = await api.call("GET", f"/api/v1/photos/{second['id']}/thumbnail", "inspector")
    with Image.open(io.BytesIO(await resp.read())) as thumb:
        assert max(thumb.size) == 320
    assert (await api.call("GET", f"/api/v1/photos/{second['id']}/thumbnail", "inspector",
                           headers={"If-None-Match": resp.headers["ETag"]})).status == 304


async def flags_of(api: Api, audit_id: str, data: bytes, item_id: str = "entrance_clean") -> list[str]:
    status, body = await upload(api, audit_id, data, item_id=item_id)
    assert status == 201, body
    return list(body["flags"])


async def test_each_anti_fraud_flag_is_stored_and_summarised_on_the_audit(api: Api, services: Services,
                                                                          clock: FakeClock) -> None:
    audit = await f.seed_audit(services.db, started_at=STARTED)
    assert await flags_of(api, audit["_id"], f.png(seed=11)) == [fraud.FLAG_NO_EXIF]
    far = f.phone_jpeg(taken=TAKEN_LOCAL, gps=f.THE_BUND, seed=12)
    assert await flags_of(api, audit["_id"], far) == [fraud.FLAG_GPS_OUTSIDE_GEOFENCE]
    early = f.phone_jpeg(taken=datetime(2026, 11, 1, 15, 0), seed=13)
    assert await flags_of(api, audit["_id"], early) == [fraud.FLAG_CAPTURE_OUTSIDE_VISIT]
    future = f.phone_jpeg(taken=datetime(2026, 11, 2, 11, 0), seed=14)
    assert fraud.FLAG_CAPTURE_AFTER_UPLOAD in await flags_of(api, audit["_id"], future)
    no_offset = f.phone_jpeg(taken=TAKEN_LOCAL, offset=None, seed=15)  # read as Shanghai time: fine
    assert await flags_of(api, audit["_id"], no_offset) == []
    summary = (await doc_of(services, "audits", audit["_id"]))["flags"]
    assert set(summary) == {fraud.FLAG_NO_EXIF, fraud.FLAG_GPS_OUTSIDE_GEOFENCE, fraud.FLAG_CAPTURE_OUTSIDE_VISIT,
                            fraud.FLAG_CAPTURE_AFTER_UPLOAD}

    reused = f.phone_jpeg(taken=TAKEN_LOCAL, seed=20)
    await flags_of(api, audit["_id"], reused)
    another = await f.seed_audit(services.db, started_at=STARTED, branch_code="SH-LJZ")
    assert await flags_of(api, another["_id"], reused) == [fraud.FLAG_DUPLICATE]
    recompressed = f.jpeg(f.scene(seed=20), exif=f.exif_bytes(taken=TAKEN_LOCAL, gps=f.LUJIAZUI), quality=55)
    assert await flags_of(api, another["_id"], recompressed, item_id="queue_length") == [fraud.FLAG_NEAR_DUPLICATE]
    explain = await services.db.photos.find({"phash_bands": {"$in": fraud.phash_bands("0" * 16)}}).explain()
    assert "IXSCAN" in str(explain)

    await services.db.assignments.insert_one({"_id": "asg-1", "window_start": datetime(2026, 11, 3, tzinfo=UTC)})
    planned = await f.seed_audit(services.db, started_at=datetime(2026, 11, 1, 0, 0, tzinfo=UTC),
                                 assignment_id="asg-1")
    assert fraud.FLAG_CAPTURE_BEFORE_WINDOW in await flags_of(api, planned["_id"], f.phone_jpeg(taken=TAKEN_LOCAL,
                                                                                              seed=30))
    assert clock.now() == datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


async def test_only_the_uploader_deletes_and_only_while_in_progress(api: Api, services: Services) -> None:
    audit = await f.seed_audit(services.db, started_at=STARTED)
    _, doomed = await upload(api, audit["_id"], f.phone_jpeg(taken=TAKEN_LOCAL, seed=1))
    _, kept = await upload(api, audit["_id"], f.phone_jpeg(taken=TAKEN_LOCAL, seed=2))
    assert (await api.call("DELETE", f"/api/v1/photos/{doomed['id']}", "inspector")).status == 204
    assert await services.db.photos.count_documents({"_id": doomed["id"]}) == 0
    assert await services.db["photos.files"].count_documents({"metadata.photo_id": doomed["id"]}) == 0
    await services.db.audits.update_one({"_id": audit["_id"]}, {"$set": {"status": "released"}})
    resp = await api.call("DELETE", f"/api/v1/photos/{kept['id']}", "inspector")
    body = await resp.json(content_type=None)
    assert_problem(resp, body, 409)
    assert (await api.call("DELETE", f"/api/v1/photos/{kept['id']}", "branch_head")).status == 403
    assert await services.db.photos.count_documents({"_id": kept["id"]}) == 1


async def test_branch_head_adds_after_evidence_to_an_open_rectification(api: Api, services: Services) -> None:
    audit = await f.seed_audit(services.db, started_at=STARTED, status="released")
    rect = await f.seed_rectification(services.db, audit)
    form = FormData()
    form.add_field("file", f.phone_jpeg(taken=TAKEN_LOCAL, seed=40), filename="after.jpg")
    resp = await api.call("POST", f"/api/v1/rectifications/{rect['_id']}/photos", "branch_head", data=form)
    body = await resp.json()
    assert resp.status == 201, body
    assert body["owner_type"] == "rectification" and body["gps"] is None  # branch role: no location shown
    assert (await doc_of(services, "rectifications", rect["_id"]))["photo_ids"] == [body["id"]]
    assert (await api.call("GET", f"/api/v1/photos/{body['id']}", "inspector")).status == 200  # audit's inspector
    await api.login("inspector2", await _password(api, services, "inspector2"))
    assert (await api.call("GET", f"/api/v1/photos/{body['id']}", "inspector2")).status == 404
    closed = await f.seed_rectification(services.db, audit, status="verified")
    form = FormData()
    form.add_field("file", f.phone_jpeg(taken=TAKEN_LOCAL, seed=41), filename="after.jpg")
    resp = await api.call("POST", f"/api/v1/rectifications/{closed['_id']}/photos", "branch_head", data=form)
    assert resp.status == 409


async def test_retention_purge_removes_bytes_and_keeps_metadata(api: Api, services: Services,
                                                                clock: FakeClock) -> None:
    old = await f.seed_audit(services.db, started_at=STARTED)
    recent = await f.seed_audit(services.db, started_at=STARTED)
    _, old_photo = await upload(api, old["_id"], f.phone_jpeg(taken=TAKEN_LOCAL, seed=50))
    _, recent_photo = await upload(api, recent["_id"], f.phone_jpeg(taken=TAKEN_LOCAL, seed=51))
    assert (await api.call("GET", f"/api/v1/photos/{old_photo['id']}/thumbnail", "inspector")).status == 200
    await services.db.audits.update_one({"_id": old["_id"]}, {"$set": {
        "status": "released", "released_at": clock.now() - timedelta(days=40)}})
    await services.db.audits.update_one({"_id": recent["_id"]}, {"$set": {
        "status": "released", "released_at": clock.now() - timedelta(days=20)}})
    result = await purge_photos(services, older_than_days=30)
    assert result.photos == 1 and result.bytes_freed > old_photo["size"]
    doc = await doc_of(services, "photos", old_photo["id"])
    assert doc["purged"] is True and doc["sha256"] == old_photo["sha256"] and "purge_pending" not in doc
    assert await services.db["photos.files"].count_documents({"metadata.photo_id": old_photo["id"]}) == 0
    assert await services.db.events.count_documents({"type": "photo.purged"}) == 1
    resp = await api.call("GET", f"/api/v1/photos/{old_photo['id']}", "compliance")
    assert resp.status == 410
    meta = await api.json("GET", f"/api/v1/photos/{old_photo['id']}/meta", "compliance", expect=200)
    assert meta["purged"] is True and meta["sha256"] == old_photo["sha256"]
    assert (await api.call("GET", f"/api/v1/photos/{recent_photo['id']}", "compliance")).status == 200
    assert (await purge_photos(services, older_than_days=30)).photos == 0
