"""Throttled to 3G by Chromium's own network emulation, an audit with five 2 MB photos completes."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from tests.browser.conftest import FieldWorld, NewPage, phone_photo, shoot, sign_in
from tests.browser.field_steps import add_photos, answer_environment, answer_service, open_visit_and_start, submit

MIB = 1024 * 1024
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
    await throttle(page, THREE_G)
    started = time.monotonic()
    audit_id = await open_visit_and_start(page)
    photos = [(f"big-{n}.jpg", phone_photo(seed=20 + n, size_bytes=2 * MIB)) for n in range(5)]
    await answer_environment(page, photos[:2])
    await add_photos(page, "lobby_photo", photos[2:3])
    await answer_service(page, photos[3:])
    await submit(page)
    await page.locator("[data-test=result]").wait_for(timeout=240_000)
    elapsed = time.monotonic() - started
    await shoot(page, "3g-result")

    audit = await field_world.api.json("GET", f"/api/v1/audits/{audit_id}", "compliance", expect=200)
    assert audit["status"] == "submitted"
    stored = await field_world.api.json("GET", f"/api/v1/audits/{audit_id}/photos", "compliance", expect=200)
    assert sorted(p["sha256"] for p in stored["items"]) == sorted(hashlib.sha256(d).hexdigest() for _, d in photos)
    wire_seconds = sum(len(d) for _, d in photos) / THREE_G["uploadThroughput"]
    print(f"3G audit with five 2 MB photos: {elapsed:.1f} s (upload wire time at least {wire_seconds:.0f} s)")
