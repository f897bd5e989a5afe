"""Every console screen, for branch heads, regional managers and compliance, at 360x780 and at desktop size,
in zh-CN and in en: axe-core finds no serious or critical violation; at phone size the page never scrolls
sideways and every control is a 44 px target; a screenshot is kept (var/screenshots/console-*)."""

from __future__ import annotations

from typing import Any

from aiohttp import FormData

from server.jobs.dispatcher import drain
from tests.browser.conftest import PHONE, phone_photo, plan_visit, shoot
from tests.browser.console_steps import (
    DESKTOP,
    ConsoleWorld,
    NewPage,
    console_sign_in,
    console_world,
    desk,
    released_audit,
    settings,
    sideways,
    small_targets,
    submitted_audit,
)
from tests.browser.test_field_screens import axe_problems, choose_language

__all__ = ["console_world", "desk", "settings"]


async def seed(world: ConsoleWorld) -> dict[str, str]:
    """Work on every screen: a released audit with a fix submitted, an appeal and a request for more time; a
    submitted audit in the queue; a program with a visit."""
    released = await released_audit(world, fail=("hall_clean", "wait_minutes"))
    queued = await submitted_audit(world)
    await plan_visit(world.api, world.services.db)
    await drain(world.services)
    rects = {r["item_id"]: r for r in (await world.api.json("GET", "/api/v1/rectifications", "branch_head",
                                                             expect=200))["items"]}
    form = FormData()
    form.add_field("file", phone_photo(seed=5), filename="after.jpg", content_type="image/jpeg")
    resp = await world.api.call("POST", f"/api/v1/rectifications/{rects['hall_clean']['id']}/photos", "branch_head",
                                data=form)
    assert resp.status == 201
    await world.api.json("POST", f"/api/v1/rectifications/{rects['hall_clean']['id']}/submit", "branch_head",
                         expect=200, json={"note": "Cleaned"})
    findings = {f["item_id"]: f["id"] for f in released["findings"]}
    await world.api.json("POST", f"/api/v1/findings/{findings['wait_minutes']}/appeal", "branch_head", expect=201,
                         json={"reason": "A system outage that day"})
    later = rects["wait_minutes"]["due_at"].replace("T", " ")[:10] + "T10:00:00+08:00"
    await world.api.json("POST", f"/api/v1/rectifications/{rects['wait_minutes']['id']}/extension", "branch_head",
                         expect=200, json={"requested_due_at": later.replace(" ", "T")[:10] + "T23:00:00+08:00",
                                           "reason": "The queue machine is on order"})
    programs = await world.api.json("GET", "/api/v1/programs", "compliance", expect=200)
    branch = released["branch"]
    return {"released": released["audit_id"], "queued": queued["audit_id"], "rect": rects["hall_clean"]["id"],
            "program": programs["items"][0]["id"], "region": branch["region_id"]}


def screens_of(ids: dict[str, str]) -> dict[str, list[tuple[str, str, str]]]:
    """Per role: (name, path, a selector present once the screen has its data)."""
    return {
        "branch_head": [
            ("branch-dashboard", "/app/branch", "[data-test=latest-audit]"),
            ("branch-audits", "/app/branch/audits", "[data-test=audit-row]"),
            ("branch-audit", f"/app/branch/audits/{ids['released']}", "[data-item=hall_clean] img[src^='blob:']"),
            ("branch-findings", "/app/branch/findings", "[data-test=finding]"),
            ("branch-rectifications", "/app/branch/rectifications", "[data-test=rectification]"),
            ("branch-rectification", f"/app/branch/rectifications/{ids['rect']}", "[data-test=after-photos] img"),
            ("branch-notifications", "/app/notifications", "[data-test=notification]"),
        ],
        "regional_manager": [
            ("region", "/app/region", "[data-test=branch-card]"),
            ("region-escalations", "/app/region/escalations", "[data-test=extension-request]"),
            ("region-history", "/app/history", "[data-test=history-row]"),
            ("region-reports", "/app/reports", "[data-test=report-scorecard]"),
        ],
        "compliance": [
            ("review-queue", "/app/review", "[data-test=queue-row]"),
            ("review-audit", f"/app/review/audits/{ids['queued']}", "[data-test=photo-flags]"),
            ("review-appeals", "/app/review/appeals", "[data-test=appeal-card]"),
            ("review-fixes", "/app/review/fixes", "[data-test=fix-card] img"),
            ("history", "/app/history", "[data-test=history-row]"),
            ("reports", f"/app/reports?region_id={ids['region']}", "[data-test=report-trend] [data-test=chart] canvas"),
            ("programs", f"/app/programs?program={ids['program']}", "[data-test=calendar-visit]"),
            ("trail", f"/app/trail?entity_id={ids['released']}", "[data-test=trail-entry]"),
            ("notifications", "/app/notifications", "[data-test=stream-state]"),
        ],
    }


async def check_screen(page: Any, language: str, name: str, problems: dict[str, list[str]]) -> None:
    for size, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(viewport)
        await page.wait_for_timeout(50)  # charts redraw at the new width
        found = await axe_problems(page)
        if size == "phone":
            found += await sideways(page) + await small_targets(page)
        if found:
            problems[f"{name} {language} {size}"] = found
        if (language, size) in (("zh-CN", "phone"), ("en", "desktop")):
            await shoot(page, f"console-{name}-{language}-{size}")


async def test_every_console_screen_passes_axe_in_zh_cn_and_en_at_phone_and_desktop_size(
        desk: NewPage, console_world: ConsoleWorld) -> None:
    ids = await seed(console_world)
    problems: dict[str, list[str]] = {}
    checked = 0
    for role, screens in screens_of(ids).items():
        page = await desk("en")
        await console_sign_in(page, console_world, role)
        for language in ("zh-CN", "en"):
            await choose_language(page, language)
            for name, path, ready in screens:
                await page.goto(path)
                await page.locator(ready).first.wait_for()
                assert await page.evaluate("() => document.documentElement.lang") == language
                await check_screen(page, language, f"{name}", problems)
                checked += 1
    assert checked == 40
    assert not problems, problems
