"""An admin changes a branch (an unknown time zone is refused on its field before anything is sent, a new
geofence and zone are saved), closes it with a reason and sees its open work; pauses a webhook and rotates
its secret, shown once."""

from __future__ import annotations

from tests.browser.conftest import PHONE, plan_visit, shoot
from tests.browser.console_steps import ConsoleWorld, NewPage, console_world, desk, settings
from tests.browser.test_admin_screens import admin_sign_in

__all__ = ["console_world", "desk", "settings"]


async def test_an_admin_edits_and_closes_a_branch_and_sees_its_open_work(desk: NewPage,
                                                                       console_world: ConsoleWorld) -> None:
    _, branch = await plan_visit(console_world.api, console_world.services.db)
    page = await desk("en", viewport=PHONE)
    await admin_sign_in(page, console_world.credentials)
    await page.goto("/app/admin/organisation")
    await page.locator("[data-test=branch-row] a", has_text=branch["code"]).click()
    await page.locator("[data-test=timezone]").wait_for()
    assert await page.input_value("[data-test=timezone]") == branch["timezone"]

    patches: list[str] = []
    page.on("request", lambda r: patches.append(r.url) if r.method == "PATCH" else None)
    await page.fill("[data-test=timezone]", "Asia/Atlantis")
    await page.click("[data-test=save-branch]")
    await page.locator("[data-test=timezone-problem]").wait_for()
    assert await page.get_attribute("[data-test=timezone]", "aria-invalid") == "true"
    await shoot(page, "admin-branch-timezone-problem-en-phone")
    assert patches == []

    await page.fill("[data-test=timezone]", "Asia/Hong_Kong")
    await page.fill("#b-geofence", "200")
    async with page.expect_request(lambda r: r.method == "PATCH") as sent:
        await page.click("[data-test=save-branch]")
    assert (await sent.value).post_data_json == {"timezone": "Asia/Hong_Kong", "geofence_m": 200}
    await page.locator("[data-test=branch-saved]").wait_for()
    saved = await console_world.api.json("GET", f"/api/v1/branches/{branch['id']}", "admin", expect=200)
    assert (saved["timezone"], saved["geofence_m"]) == ("Asia/Hong_Kong", 200)

    await page.fill("[data-test=close-reason]", "Merged into the Pudong branch")
    await page.click("[data-test=close-branch]")
    await page.locator("[data-test=open-work]").wait_for()
    await page.locator("[data-test=branch-closed]").wait_for()
    assert "1" in await page.locator("[data-test=open-work] h3").first.inner_text()  # the planned visit
    await shoot(page, "admin-branch-closed-en-phone")


async def test_an_admin_pauses_a_webhook_and_sees_its_new_secret_once(desk: NewPage,
                                                                     console_world: ConsoleWorld) -> None:
    await console_world.api.json("POST", "/api/v1/webhooks", "admin", expect=201,
                                 json={"url": "http://127.0.0.1:9/hook", "event_types": ["audit.submitted"]})
    page = await desk("en")
    await admin_sign_in(page, console_world.credentials)
    await page.goto("/app/admin/webhooks")
    await page.click("[data-test=pause]")
    await page.locator("[data-test=resume]").wait_for()
    await page.click("[data-test=rotate]")
    secret = (await page.locator("[data-test=webhook-secret] code").inner_text()).strip()
    hooks = await console_world.api.json("GET", "/api/v1/webhooks", "admin", expect=200)
    assert hooks["items"][0]["active"] is False
    assert secret and secret not in str(hooks)
    await shoot(page, "admin-webhook-secret-en-desktop")
    # Shown once: back on the screen (inside the app, so the live stream stays open), it is gone.
    await page.click("[data-test=nav-admin-users]")
    await page.locator("[data-test=user-row]").first.wait_for()
    await page.click("[data-test=nav-admin-webhooks]")
    await page.locator("[data-test=webhook]").wait_for()
    assert await page.locator("[data-test=webhook-secret]").count() == 0
