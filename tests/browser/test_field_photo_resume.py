"""A photo upload resumes at the stored offset after a loopback proxy cuts a PATCH part-way, and the
server ends up with exactly one photo, byte for byte the one taken."""

from __future__ import annotations

import asyncio
import hashlib
from urllib.parse import urlsplit

from tests.browser.conftest import FieldWorld, NewPage, phone_photo, shoot, sign_in
from tests.browser.field_steps import add_photos, open_visit_and_start
from tests.browser.proxy import CuttingProxy, RequestHead

MIB = 1024 * 1024


async def test_a_photo_resumes_after_the_connection_drops(phone: NewPage, field_world: FieldWorld) -> None:
    upstream = urlsplit(field_world.base)

    def cut_second_chunk(request: RequestHead, sent: int) -> bool:
        # Once: the PATCH carrying the second MiB, about a third of the way in.
        return (request.method == "PATCH" and request.headers.get("upload-offset") == str(MIB)
                and sent >= 300_000 and proxy.cuts == 0)

    proxy = CuttingProxy(upstream.hostname or "127.0.0.1", upstream.port or 80, cut_second_chunk)
    port = await proxy.start()
    try:
        page = await phone("en", base=f"http://127.0.0.1:{port}")
        await sign_in(page, field_world)
        audit_id = await open_visit_and_start(page)
        photo = phone_photo(seed=11, size_bytes=int(2.5 * MIB))
        await add_photos(page, "lobby_photo", [("lobby.jpg", photo)])

        stored: dict[str, list[dict[str, str]]] = {"items": []}
        for _ in range(150):
            stored = await field_world.api.json("GET", f"/api/v1/audits/{audit_id}/photos", "compliance", expect=200)
            if stored["items"]:
                break
            await asyncio.sleep(0.1)
        await page.locator("[data-item=lobby_photo] [data-test=photo-sent]").wait_for()
        await shoot(page, "photo-resumed")
    finally:
        await proxy.close()

    uploads = [line for line in proxy.log if "/api/v1/uploads" in line or line.startswith("CUT")]
    assert uploads[0] == "POST /api/v1/uploads"
    assert [line for line in uploads if line.startswith("POST")] == ["POST /api/v1/uploads"], uploads
    cut = uploads.index(next(line for line in uploads if line.startswith("CUT")))
    assert uploads[cut - 1].startswith("PATCH") and uploads[cut - 1].endswith(f" {MIB}"), uploads
    # After the drop: HEAD for the stored offset, then the rest from there, never from byte 0.
    assert uploads[cut + 1].startswith("HEAD"), uploads
    resumed = [int(line.rsplit(" ", 1)[1]) for line in uploads[cut + 2:] if line.startswith("PATCH")]
    assert resumed and resumed[0] >= MIB, uploads
    assert len(stored["items"]) == 1
    assert stored["items"][0]["sha256"] == hashlib.sha256(photo).hexdigest()
