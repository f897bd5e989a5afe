"""Every admin screen (users, a user, regions and branches, a branch, checklists, webhooks, failed events,
programs and visits) at 360x780 and at desktop size, in zh-CN and en: axe-core finds no serious or critical
violation; at phone size the page never scrolls sideways and every control is a 44 px target; a screenshot
is kept (var/screenshots/admin-*)."""

from __future__ import annotations

from typing import Any

from server.jobs.dispatcher import drain
from server.storage import outbox
from tests.browser.conftest import PHONE, plan_visit, shoot
from tests.browser.console_steps import (
    DESKTOP,
    ConsoleWorld,
    NewPage,
    console_world,
    desk,
    settings,
    sideways,
    small_targets,
)
from tests.browser.test_field_screens import axe_problems, choose_language

__all__ = ["console_world", "desk", "settings"]


async def admin_sign_in(page: Any, credentials: dict[str, dict[str, str]]) -> None:
    await page.goto("/app/login")
    await page.fill("#username", credentials["admin"]["username"])
    await page.fill("#password", credentials["admin"]["password"])
    await page.click("button[type=submit]")
    await page.wait_for_url("**/app/admin/users")


async def seed(world: ConsoleWorld) -> dict[str, str]:
    """Something on every screen: a webhook, a planned visit, a user to open, an event a handler gave up on."""
    hook = await world.api.json("POST", "/api/v1/webhooks", "admin", expect=201,
                                json={"url": "http://127.0.0.1:9/hook", "event_types": ["*"], "description": "BI"})
    visit_id, branch = await plan_visit(world.api, world.services.db)
    await drain(world.services)
    programs = await world.api.json("GET", "/api/v1/programs", "compliance", expect=200)
    inspector = await world.user("inspector")
    # A notification handler that gave up on a visit's event (the embedded server's dispatcher does not
    # run in these tests, so the failure is recorded as the dispatcher records it).
    visit_event = {"_id": "evt-browser-admin", "type": "assignment.planned", "seq": 1,
                   "subject": {"type": "assignment", "id": visit_id}}
    await outbox.defer(world.services.db, "notify", visit_event, outbox.STATUS_PARKED, world.clock.now(),
                       error="SMTPServerDisconnected: Connection unexpectedly closed")
    return {"hook": hook["id"], "branch": branch["id"], "program": programs["items"][0]["id"], "user": inspector["id"]}


def screens_of(ids: dict[str, str]) -> list[tuple[str, str, str]]:
    """(name, path, a selector present once the screen has its data)."""
    return [
        ("users", "/app/admin/users", "[data-test=user-row]"),
        ("user", f"/app/admin/users/{ids['user']}", "[data-test=session-row], [data-test=no-sessions]"),
        ("org", "/app/admin/organisation", "[data-test=branch-row]"),
        ("branch", f"/app/admin/branches/{ids['branch']}", "[data-test=close-branch]"),
        ("checklists", "/app/admin/checklists", "[data-test=checklist-browser-visit]"),
        ("webhooks", "/app/admin/webhooks", "[data-test=webhook]"),
        ("failures", "/app/admin/failures", "[data-test=failure] [data-test=retry]"),
        ("programs", f"/app/admin/programs?program={ids['program']}", "[data-test=admin-visit]"),
    ]


async def check_screen(page: Any, language: str, name: str, problems: dict[str, list[str]]) -> None:
    for size, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(viewport)
        await page.wait_for_timeout(50)
        found = await axe_problems(page)
        if size == "phone":
            found += await sideways(page) + await small_targets(page)
        if found:
            problems[f"{name} {language} {size}"] = found
        if (language, size) in (("zh-CN", "phone"), ("en", "desktop")):
            await shoot(page, f"admin-{name}-{language}-{size}")


async def test_every_admin_screen_passes_axe_in_zh_cn_and_en_at_phone_and_desktop_size(
        desk: NewPage, console_world: ConsoleWorld) -> None:
    ids = await seed(console_world)
    problems: dict[str, list[str]] = {}
    page = await desk("en")
    await admin_sign_in(page, console_world.credentials)
    checked = 0
    for language in ("zh-CN", "en"):
        await choose_language(page, language)
        for name, path, ready in screens_of(ids):
            await page.goto(path)
            await page.locator(ready).first.wait_for()
            assert await page.evaluate("() => document.documentElement.lang") == language
            # Every admin entry of the navigation is named in the reader's language (no raw message keys).
            nav = await page.locator(".console-nav").inner_text()
            assert "admin." not in nav, nav
            await check_screen(page, language, name, problems)
            checked += 1
    assert checked == 16
    assert not problems, problems

    # The parked event is put back in line for its handler.
    await page.goto("/app/admin/failures")
    await page.click("[data-test=failure] [data-test=retry]")
    await page.locator("[data-test=failure] [data-test=retry]").wait_for(state="detached")
    failures = await console_world.api.json("GET", "/api/v1/events/failures", "admin", expect=200)
    assert [f["status"] for f in failures["items"]] == ["retrying"]
