"""An admin gives a planned visit to another inspector, moves it to a new window typed in the branch's
local time, and cancels it with a reason; each change is the API's and its trail's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.browser.conftest import plan_visit, shoot
from tests.browser.console_steps import ConsoleWorld, NewPage, console_world, desk, settings
from tests.browser.test_admin_screens import admin_sign_in

__all__ = ["console_world", "desk", "settings"]


async def test_an_admin_reassigns_moves_and_cancels_a_visit(desk: NewPage, console_world: ConsoleWorld) -> None:
    visit_id, branch = await plan_visit(console_world.api, console_world.services.db)
    visit = await console_world.api.json("GET", f"/api/v1/assignments?branch_id={branch['id']}", "admin", expect=200)
    program_id = visit["items"][0]["program_id"]
    elena = await console_world.api.json("GET", "/api/v1/users?q=inspector2", "admin", expect=200)
    page = await desk("en")
    await admin_sign_in(page, console_world.credentials)
    await page.goto(f"/app/admin/programs?program={program_id}")
    card = page.locator("[data-test=admin-visit]").first
    await card.wait_for()

    await card.locator("select").select_option(elena["items"][0]["id"])
    await card.get_by_role("button", name="Reassign").click()
    await page.locator("[data-test=done]").wait_for()
    await card.locator("[data-test=visit-facts]", has_text="Elena Revisora").wait_for()

    zone = ZoneInfo(branch["timezone"])
    day = (datetime.now(zone) + timedelta(days=1)).date()
    await card.get_by_label("From").fill(f"{day.isoformat()}T10:00")
    await card.get_by_label("To").fill(f"{day.isoformat()}T12:00")
    await card.get_by_role("button", name="Move").click()
    await page.get_by_text("The visit is moved.").wait_for()
    moved = await console_world.api.json("GET", f"/api/v1/assignments?program_id={program_id}", "admin", expect=200)
    start = datetime.fromisoformat(moved["items"][0]["window_start"])
    assert start == datetime(day.year, day.month, day.day, 10, tzinfo=zone).astimezone(UTC)
    assert moved["items"][0]["assignee_id"] == elena["items"][0]["id"]

    await card.get_by_label("Reason").fill("The branch is closed for renovation that day")
    await card.get_by_role("button", name="Cancel the visit").click()
    await page.get_by_text("The visit is cancelled.").wait_for()
    await shoot(page, "admin-visit-cancelled-en-desktop")
    trail = await console_world.api.json("GET", f"/api/v1/trail?entity_id={visit_id}", "admin", expect=200)
    assert {"assignment.cancel"} <= {entry["action"] for entry in trail["items"]}
