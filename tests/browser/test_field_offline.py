"""An audit done offline arrives exactly once: answers (with a show_if chain) and three photos with EXIF
are kept through a reload with no network, then sent when the phone is online again."""

from __future__ import annotations

import hashlib

from tests.browser.conftest import FieldWorld, NewPage, phone_photo, service_worker_ready, shoot, sign_in
from tests.browser.field_steps import (
    EXPECTED_ANSWERS,
    add_photos,
    answer_environment,
    answer_service,
    open_visit_to_checkin,
    server_audit,
    start_checked_in,
    submit,
)


async def test_an_audit_done_offline_arrives_exactly_once(phone: NewPage, field_world: FieldWorld) -> None:
    page = await phone("en")
    await sign_in(page, field_world)
    await service_worker_ready(page)
    await open_visit_to_checkin(page)

    # Offline before the start: the start is queued with everything else, and nothing can reach the server.
    await page.context.set_offline(True)
    audit_id = await start_checked_in(page)
    photos = [(f"evidence-{n}.jpg", phone_photo(seed=n)) for n in range(3)]
    await answer_environment(page, photos[:2])
    await answer_service(page, [])
    await add_photos(page, "badge_worn", photos[2:])
    await shoot(page, "offline-runner-service")

    await page.reload()  # no network: the service worker serves the app, IndexedDB the audit
    await page.locator("[data-item=hall_clean]").wait_for()
    assert await page.locator("[data-item=hall_clean] [data-test=no]").is_checked()
    assert await page.locator("[data-item=signage] [data-test=rating-5]").is_checked()
    assert await page.locator("[data-test=photo]").count() == 2
    await page.select_option("#jump", index=1)
    assert await page.locator("[data-item=manager_name] textarea").input_value() == "Ms Wang, lobby manager"
    assert await page.locator("[data-item=time_to_greet] [data-test=timer-typed]").input_value() == "12"
    assert await page.locator("[data-test=photo]").count() == 1

    await submit(page)  # queued behind the answers and photos
    await page.locator("[data-test=sending]").wait_for()
    assert field_world.api.base  # nothing reached the server yet:
    missing = await field_world.api.call("GET", f"/api/v1/audits/{audit_id}", "compliance")
    assert missing.status == 404

    await page.context.set_offline(False)
    await page.locator("[data-test=result]").wait_for(timeout=30_000)
    await shoot(page, "offline-result")

    audit = await server_audit(field_world, audit_id)
    assert audit["status"] == "submitted"
    # The phone sends the fields this server declares: the version it started on and the fix's accuracy.
    assert audit["checklist_version"] == 1
    assert audit["checkin"]["accuracy_m"] == 25
    assert audit["checkin"]["distance_m"] < 150
    assert {k: v["value"] for k, v in audit["answers"].items()} == EXPECTED_ANSWERS
    started = await field_world.api.json("GET", f"/api/v1/audits?branch_id={field_world.branch['id']}",
                                         "compliance", expect=200)
    assert [a["id"] for a in started["items"]] == [audit_id]
    stored = await field_world.api.json("GET", f"/api/v1/audits/{audit_id}/photos", "compliance", expect=200)
    assert sorted(p["sha256"] for p in stored["items"]) == sorted(hashlib.sha256(d).hexdigest() for _, d in photos)
    assert sorted(p["item_id"] for p in stored["items"]) == ["badge_worn", "hall_clean", "lobby_photo"]
