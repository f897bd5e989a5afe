"""tus 1.0 resumable uploads spoken the way a standard tus client speaks them (raw HTTP requests)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
from datetime import UTC, datetime
from urllib.parse import urlsplit

from server.context import Services
from tests import image_factory as f
from tests.conftest import Api

STARTED = datetime(2026, 11, 2, 0, 40, tzinfo=UTC)
TUS = {"Tus-Resumable": "1.0.0"}


def metadata(**pairs: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())


async def create(api: Api, audit_id: str, length: int, who: str = "inspector") -> str:
    resp = await api.call("POST", "/api/v1/uploads", who, headers={
        **TUS, "Upload-Length": str(length),
        "Upload-Metadata": metadata(audit_id=audit_id, item_id="entrance_clean", filename="door.jpg")})
    assert resp.status == 201, await resp.text()
    assert resp.headers["Tus-Resumable"] == "1.0.0"
    return resp.headers["Location"]


async def patch(api: Api, location: str, offset: int, body: bytes,
                who: str = "inspector") -> tuple[int, dict[str, str]]:
    resp = await api.call("PATCH", location, who, data=io.BytesIO(body), headers={
        **TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"})
    return resp.status, dict(resp.headers)


async def send_half_and_hang_up(api: Api, location: str, offset: int, body: bytes, declared: int) -> None:
    """A phone losing its connection mid-PATCH: headers promise `declared` bytes, fewer arrive."""
    url = urlsplit(api.url(location))
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    token = await api.token("inspector")
    head = (f"PATCH {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {token}\r\n"
            f"Tus-Resumable: 1.0.0\r\nUpload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Content-Length: {declared}\r\n\r\n")
    writer.write(head.encode() + body)
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.close()
    await writer.wait_closed()
    del reader


async def head_offset(api: Api, location: str) -> int:
    resp = await api.call("HEAD", location, "inspector", headers=TUS)
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Tus-Resumable"] == "1.0.0" and resp.headers["Upload-Length"]
    return int(resp.headers["Upload-Offset"])


async def test_options_advertises_the_protocol_without_tus_resumable(api: Api) -> None:
    resp = await api.call("OPTIONS", "/api/v1/uploads")
    assert resp.status == 204
    assert resp.headers["Tus-Version"] == "1.0.0"
    assert set(resp.headers["Tus-Extension"].split(",")) == {"creation", "termination"}
    assert int(resp.headers["Tus-Max-Size"]) == 20 * 1024 * 1024
    assert "Tus-Resumable" not in resp.headers


async def test_an_interrupted_upload_resumes_to_identical_bytes(api: Api, services: Services) -> None:
    audit = await f.seed_audit(services.db, started_at=STARTED)
    photo = f.jpeg(f.noisy_scene(2400, 1800, seed=3, noise=90), exif=f.exif_bytes(taken=datetime(2026, 11, 2, 8, 55),
                                                                         offset="+08:00", gps=f.LUJIAZUI))
    assert len(photo) > 2 * 1024 * 1024
    location = await create(api, audit["_id"], len(photo))

    status, headers = await patch(api, location, 0, photo[:1_000_000])
    assert status == 204 and headers["Upload-Offset"] == "1000000" and headers["Tus-Resumable"] == "1.0.0"

    cut = 1_000_000 + 1_300_000
    await send_half_and_hang_up(api, location, 1_000_000, photo[1_000_000:cut], declared=len(photo) - 1_000_000)
    # Every whole 1 MB piece that arrived before the hang-up is stored and reported; a vanished phone
    # sends no FIN, so the server cannot know the rest is not coming and does not count it yet.
    offset = await head_offset(api, location)
    assert 1_000_000 + 1024 * 1024 <= offset <= cut

    status, _ = await patch(api, location, 0, photo)
    assert status == 409  # a stale offset is refused
    status, headers = await patch(api, location, offset, photo[offset:])
    assert status == 204 and headers["Upload-Offset"] == str(len(photo))
    photo_id = headers["Photo-Id"]

    resp = await api.call("GET", f"/api/v1/photos/{photo_id}", "inspector")
    served = await resp.read()
    assert hashlib.sha256(served).hexdigest() == hashlib.sha256(photo).hexdigest()
    state = await api.json("GET", location, "inspector", expect=200)
    assert state["status"] == "complete" and state["photo_id"] == photo_id and state["offset"] == len(photo)
    assert await services.db.upload_chunks.count_documents({}) == 0
    meta = await api.json("GET", f"/api/v1/photos/{photo_id}/meta", "inspector", expect=200)
    assert meta["flags"] == [] and meta["item_id"] == "entrance_clean"

    # The same bytes again through tus: the same photo (stored once).
    again = await create(api, audit["_id"], len(photo))
    status, headers = await patch(api, again, 0, photo)
    assert status == 204 and headers["Photo-Id"] == photo_id


async def test_protocol_errors(api: Api, services: Services) -> None:
    audit = await f.seed_audit(services.db, started_at=STARTED)
    resp = await api.call("POST", "/api/v1/uploads", "inspector", headers={"Upload-Length": "10"})
    assert resp.status == 412 and resp.headers["Tus-Version"] == "1.0.0"
    resp = await api.call("POST", "/api/v1/uploads", "inspector", headers={"Tus-Resumable": "0.2.2",
                                                                           "Upload-Length": "10"})
    assert resp.status == 412
    resp = await api.call("POST", "/api/v1/uploads", "inspector", headers={
        **TUS, "Upload-Length": str(21 * 1024 * 1024), "Upload-Metadata": metadata(audit_id=audit["_id"],
                                                                                  item_id="entrance_clean")})
    assert resp.status == 413 and resp.headers["Tus-Resumable"] == "1.0.0"
    resp = await api.call("POST", "/api/v1/uploads", "inspector", headers={**TUS, "Upload-Length": "10",
                                                                           "Upload-Metadata": "audit_id !!!"})
    assert resp.status == 400
    resp = await api.call("POST", "/api/v1/uploads", "inspector", headers={
        **TUS, "Upload-Length": "10", "Upload-Metadata": metadata(audit_id="nope", item_id="entrance_clean")})
    assert resp.status == 404
    location = await create(api, audit["_id"], 100)
    resp = await api.call("PATCH", location, "inspector", data=b"x" * 10,
                          headers={**TUS, "Upload-Offset": "0", "Content-Type": "application/octet-stream"})
    assert resp.status == 415
    status, _ = await patch(api, location, 0, b"x" * 101)
    assert status == 413
    resp = await api.call("HEAD", location, "compliance", headers=TUS)
    assert resp.status == 403  # compliance does not upload at all
    resp = await api.call("DELETE", location, "inspector", headers=TUS)
    assert resp.status == 204 and resp.headers["Tus-Resumable"] == "1.0.0"
    resp = await api.call("HEAD", location, "inspector", headers=TUS)
    assert resp.status == 404


async def test_a_completed_hostile_upload_is_refused_and_nothing_is_kept(api: Api, services: Services) -> None:
    audit = await f.seed_audit(services.db, started_at=STARTED)
    hostile = f.jpeg_with_html_appended()
    location = await create(api, audit["_id"], len(hostile))
    resp = await api.call("PATCH", location, "inspector", data=hostile, headers={
        **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
    body = await resp.json(content_type=None)
    assert resp.status == 422 and body["errors"][0]["loc"] == ["body", "file"]
    state = await api.json("GET", location, "inspector", expect=200)
    assert state["status"] == "rejected" and state["photo_id"] is None
    assert await services.db.photos.count_documents({}) == 0
    assert await services.db["photos.files"].count_documents({}) == 0
    assert await services.db.upload_chunks.count_documents({}) == 0
