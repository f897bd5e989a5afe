"""A step the server refuses (4xx) is parked with its reason in the user's language, holds back the rest of
that audit, and is released when the inspector fixes the cause."""

from __future__ import annotations

import asyncio

from tests.browser.conftest import FieldWorld, NewPage, shoot, sign_in
from tests.browser.field_steps import add_photos, answer, open_visit_and_start
from tests.image_factory import truncated_jpeg


async def test_a_refused_photo_is_parked_with_its_reason_until_removed(phone: NewPage, field_world: FieldWorld
                                                                      ) -> None:
    page = await phone("en")
    await sign_in(page, field_world)
    audit_id = await open_visit_and_start(page)
    await add_photos(page, "lobby_photo", [("broken.jpg", truncated_jpeg())])
    await answer(page, "hall_clean", "yes")

    await page.click(".app-nav a[href='/app/sync']")
    reason = page.locator("[data-test=last-error]")
    await reason.wait_for(timeout=30_000)
    # The inspector's language (zh-CN for the demo inspector), not the server's English.
    assert await reason.inner_text() == "服务器拒绝了这张照片（为空、已损坏或不是照片）。"
    await shoot(page, "sync-parked")
    audit = await field_world.api.json("GET", f"/api/v1/audits/{audit_id}", "compliance", expect=200)
    assert audit["answers"] == {}  # held back behind the refused photo

    await page.go_back()
    await page.locator("[data-item=lobby_photo] [data-test=photo] button").click()  # remove the broken photo
    for _ in range(100):
        audit = await field_world.api.json("GET", f"/api/v1/audits/{audit_id}", "compliance", expect=200)
        if audit["answers"]:
            break
        await asyncio.sleep(0.1)
    assert {k: v["value"] for k, v in audit["answers"].items()} == {"hall_clean": True}
    stored = await field_world.api.json("GET", f"/api/v1/audits/{audit_id}/photos", "compliance", expect=200)
    assert stored["items"] == []
