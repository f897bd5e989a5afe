"""Compliance creates a program from the console, generates its visits and sees who goes where on the
calendar; the regional manager approves a branch head's request for more time."""

from __future__ import annotations

from datetime import timedelta

from server.jobs.dispatcher import drain
from tests.browser.conftest import PHONE, shoot
from tests.browser.console_steps import (
    ConsoleWorld,
    NewPage,
    console_sign_in,
    console_world,
    desk,
    released_audit,
    settings,
)

__all__ = ["console_world", "desk", "settings"]


async def test_a_program_is_created_its_visits_generated_and_shown_on_the_calendar(
        desk: NewPage, console_world: ConsoleWorld) -> None:
    page = await desk("en")
    await console_sign_in(page, console_world, "compliance")
    await page.click("[data-test=nav-programs]")
    await page.locator("details.card summary").click()
    await page.fill("[data-test=p-name]", "December hall check")
    await page.select_option("[data-test=p-checklist]", "browser-visit")
    today = console_world.clock.now().date()
    await page.fill("[data-test=p-start]", (today + timedelta(days=1)).isoformat())
    await page.fill("[data-test=p-end]", (today + timedelta(days=14)).isoformat())
    await page.locator("[data-test=p-branch]").first.check()
    await page.locator("[data-test=p-branch]").nth(1).check()
    await page.click("[data-test=p-create]")
    await page.locator("[data-test=done]").wait_for()
    row = page.locator("[data-test=program-row]", has_text="December hall check")
    await row.locator("[data-test=generate]").click()
    visits = page.locator("[data-test=calendar-visit]")
    await visits.nth(1).wait_for()
    await shoot(page, "console-programs-generated-en")
    programs = await console_world.api.json("GET", "/api/v1/programs", "compliance", expect=200)
    program = next(p for p in programs["items"] if p["name"] == "December hall check")
    planned = await console_world.api.json("GET", f"/api/v1/assignments?program_id={program['id']}", "compliance",
                                           expect=200)
    assert program["assignments_generated"] and len(program["branch_ids"]) == 2
    assert await visits.count() == len(planned["items"]) == 2
    assert "→" in await visits.first.inner_text()


async def test_the_regional_manager_approves_more_time(desk: NewPage, console_world: ConsoleWorld) -> None:
    await released_audit(console_world, fail=("hall_clean",))
    await drain(console_world.services)
    rects = await console_world.api.json("GET", "/api/v1/rectifications", "branch_head", expect=200)
    rect = rects["items"][0]
    head = await desk("en", viewport=PHONE)
    await console_sign_in(head, console_world, "branch_head")
    await head.goto(f"/app/branch/rectifications/{rect['id']}")
    await head.click("[data-test=ask-time]")
    due = (console_world.clock.now() + timedelta(days=10)).strftime("%Y-%m-%d") + "T18:00"
    await head.fill("[data-test=ext-due]", due)
    await head.fill("[data-test=ext-reason]", "The cleaning contractor comes next week")
    await head.click("[data-test=ext-submit]")
    await head.locator("[data-test=extension]").wait_for()

    manager = await desk("en")
    await console_sign_in(manager, console_world, "regional_manager")
    await manager.click("[data-test=nav-region-escalations]")
    request = manager.locator("[data-test=extension-request]")
    await request.wait_for()
    await shoot(manager, "console-region-extension-en")
    await request.locator("[data-test=approve]").click()
    await manager.locator("[data-test=done]").wait_for()
    decided = await console_world.api.json("GET", f"/api/v1/rectifications/{rect['id']}", "compliance", expect=200)
    assert decided["extension"]["status"] == "approved" and decided["due_at_local"].startswith(due)
