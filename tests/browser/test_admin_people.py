"""People on the admin screens. An admin deactivates an inspector while the inspector's field app holds an
unsent answer: the app is sent to sign in again and keeps its queue; once reactivated, the inspector signs
in and the answer reaches the server. A refused password is marked on its field; a temporary password is
shown once and works."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.browser.conftest import PHONE, FieldWorld, NewPage, shoot, sign_in
from tests.browser.console_steps import DESKTOP
from tests.browser.field_steps import answer, open_visit_and_start
from tests.browser.test_admin_screens import admin_sign_in


async def server_answers(world: FieldWorld, audit_id: str) -> dict[str, Any]:
    audit: dict[str, Any] = await world.api.json("GET", f"/api/v1/audits/{audit_id}", "compliance", expect=200)
    return {item: entry["value"] for item, entry in audit["answers"].items()}


async def test_a_deactivated_inspectors_app_asks_for_a_login_and_keeps_its_queue(
        phone: NewPage, browser: Any, field_world: FieldWorld) -> None:
    field = await phone("en")
    await sign_in(field, field_world)
    audit_id = await open_visit_and_start(field)
    for _ in range(100):  # the start has reached the server; only the answer will wait in the queue
        if (await field_world.api.call("GET", f"/api/v1/audits/{audit_id}", "compliance")).status == 200:
            break
        await asyncio.sleep(0.1)
    await field.context.set_offline(True)
    await answer(field, "hall_clean", "yes")  # queued: the phone is offline

    desk = await browser.new_context(viewport=DESKTOP, device_scale_factor=1, locale="en", base_url=field_world.base)
    admin = await desk.new_page()
    try:
        await admin_sign_in(admin, field_world.credentials)
        await admin.fill("[data-test=user-search]", field_world.login_of("inspector")["username"])
        await admin.press("[data-test=user-search]", "Enter")
        await admin.locator("[data-test=user-row] a", has_text="Zhou Jiancha").click()
        await admin.locator("[data-test=session-row]").first.wait_for()  # the inspector's phone session
        await admin.click("[data-test=deactivate]")
        await admin.click("[data-test=confirm-deactivate]")
        await admin.locator("[data-test=user-state].bad").wait_for()
        await admin.locator("[data-test=no-sessions]").wait_for()
        await shoot(admin, "admin-user-deactivated-en-desktop")

        # Back online, the phone's next request is refused: it asks for a login and keeps the answer.
        await field.context.set_offline(False)
        await field.locator(".notice.error[role=alert]").wait_for()
        await shoot(field, "admin-deactivated-inspector-login-needed")
        assert await server_answers(field_world, audit_id) == {}
        await field.goto("/app/sync")
        await field.locator("[data-test=action]").first.wait_for()

        # Reactivated, the same inspector signs in again and the kept answer goes out.
        await admin.click("[data-test=reactivate]")
        await admin.locator("[data-test=user-state].ok").wait_for()
    finally:
        await desk.close()
    await field.goto("/app/login")
    await field.fill("#password", field_world.login_of("inspector")["password"])
    await field.click("button[type=submit]")
    await field.wait_for_url("**/app/visits")
    answers: dict[str, Any] = {}
    for _ in range(100):
        answers = await server_answers(field_world, audit_id)
        if answers:
            break
        await asyncio.sleep(0.1)
    assert answers == {"hall_clean": True}


async def test_an_admin_adds_a_user_after_a_refused_password_and_gives_them_a_temporary_one(
        browser: Any, field_world: FieldWorld) -> None:
    desk = await browser.new_context(viewport=PHONE, device_scale_factor=1, locale="en", base_url=field_world.base)
    page = await desk.new_page()
    try:
        await admin_sign_in(page, field_world.credentials)
        await page.click("[data-test=create-user] summary")
        await page.fill("#new-username", "wu.jiancha")
        await page.fill("#new-password", "wu.jiancha")  # the username itself: refused
        await page.fill("#new-display_name", "Wu Jiancha")
        await page.select_option("#new-role", "inspector")
        await page.click("[data-test=create-user] button[type=submit]")
        await page.locator("[data-test=create-user] [data-test=problem]").wait_for()
        assert await page.get_attribute("#new-password", "aria-invalid") == "true"
        await page.locator("[data-test=password-problem]").wait_for()
        await shoot(page, "admin-user-refused-password-en-phone")

        await page.fill("#new-password", "Lantern-harbour-42")
        await page.click("[data-test=create-user] button[type=submit]")
        await page.wait_for_url("**/app/admin/users/*")
        await page.click("[data-test=reset-password]")
        temporary = (await page.locator("[data-test=temporary-password] code").inner_text()).strip()
    finally:
        await desk.close()
    resp = await field_world.api.call("POST", "/api/v1/auth/login", None,
                                      json={"username": "wu.jiancha", "password": temporary})
    assert resp.status == 200, await resp.text()
