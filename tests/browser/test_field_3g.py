"""Throttled to 3G by Chromium's own network emulation, an audit with five 2 MB photos completes. The
inspector chose "reduced to 2048 px" in settings, as the app suggests on a weak signal: the photos keep
their EXIF (capture time and place) through the reduction. (At original size the same audit needs 10 MB at
675 kbit/s, over two minutes of upload alone: `python -m bench.web` measures that one.)"""

from __future__ import annotations

import time
from typing import Any

from tests.browser.conftest import FieldWorld, NewPage, camera_photo, shoot, sign_in
from tests.browser.field_steps import (
    add_photos,
    answer_environment,
    answer_service,
    open_visit_and_start,
    submit,
    wait_until_setting,
)

# Chromium DevTools' 3G profile ("Fast 3G", now listed as "Slow 4G"): 562.5 ms round trip, 1.6 Mbit/s down and
# 750 kbit/s up, each at 90 % as DevTools applies them.
THREE_G = {"offline": False, "latency": 562.5, "downloadThroughput": 1.6e6 * 0.9 / 8,
           "uploadThroughput": 750e3 * 0.9 / 8}


async def throttle(page: Any, conditions: dict[str, Any]) -> None:
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.emulateNetworkConditions", conditions)


async def test_an_audit_with_five_2mb_photos_completes_on_3g(phone: NewPage, field_world: FieldWorld) -> None:
    page = await phone("en")
    await sign_in(page, field_world)
    await page.goto("/app/settings")
    await page.select_option("#photo-size", "2048")
    await wait_until_setting(page, "photoSize", "2048")  # leaving sooner can cut the write off
    await page.goto("/app/visits")
    await throttle(page, THREE_G)
    started = time.monotonic()
    audit_id = await open_visit_and_start(page)
    photos = [(f"camera-{n}.jpg", camera_photo(seed=20 + n)) for n in range(5)]
    assert all(len(data) > 1.9e6 for _, data in photos)
    await answer_environment(page, photos[:2])
    await add_photos(page, "lobby_photo", photos[2:3])
    await answer_service(page, photos[3:])
    await submit(page)
    await page.locator("[data-test=result]").wait_for(timeout=180_000)
    elapsed = time.monotonic() - started
    await shoot(page, "3g-result")

    audit = await field_world.api.json("GET", f"/api/v1/audits/{audit_id}", "compliance", expect=200)
    assert audit["status"] == "submitted"
    stored = await field_world.api.json("GET", f"/api/v1/audits/{audit_id}/photos", "compliance", expect=200)
    assert len(stored["items"]) == 5
    for photo in stored["items"]:
        assert max(photo["width"], photo["height"]) == 2048, photo
        assert photo["captured_at_source"].startswith("exif"), photo  # compressorjs kept the EXIF
        assert photo["gps"], photo
    print(f"3G audit with five 2 MB photos reduced to 2048 px: {elapsed:.1f} s")
