"""An admin deactivates an inspector from the Users screen while the inspector's field app holds an unsent
answer: the app is sent to sign in again and keeps its queue; once reactivated, the inspector signs in and
the answer reaches the server."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.browser.conftest import FieldWorld, NewPage, shoot, sign_in
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
