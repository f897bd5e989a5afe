"""The branch head's console: compliance releases an audit and the branch head sees it and its
rectifications; a fix with a photo submitted on 3G; appeals inside the window, refused once it closed;
checklists and repeat findings named in words, never by their keys."""

from __future__ import annotations

from datetime import timedelta

from server.jobs.dispatcher import drain
from tests.browser.conftest import KEY, PHONE, phone_photo, shoot
from tests.browser.console_steps import (
    ConsoleWorld,
    NewPage,
    console_sign_in,
    console_world,
    desk,
    released_audit,
    settings,
    submitted_audit,
)
from tests.browser.test_field_3g import THREE_G, throttle
from tests.browser.test_field_screens import choose_language

__all__ = ["console_world", "desk", "settings"]
JPEG = "image/jpeg"


async def test_released_audit_reaches_the_branch_head_who_submits_a_fix_on_3g(
        desk: NewPage, console_world: ConsoleWorld) -> None:
    audit = await submitted_audit(console_world, fail=("hall_clean", "wait_minutes"))
    reviewer = await desk("en")
    await console_sign_in(reviewer, console_world, "compliance")
    await choose_language(reviewer, "en")
    await reviewer.goto("/app/review")
    await reviewer.locator(f"[data-audit='{audit['audit_id']}'] a").click()
    await reviewer.locator("[data-test=release]").wait_for()
    await reviewer.locator("[data-item=hall_clean] img[src^='blob:']").first.wait_for()
    # Capture and upload dates apart, and the flag in words: the test photo's EXIF says 2 November.
    facts = reviewer.locator("[data-test=photo-facts]").first
    assert "uploaded" in await facts.inner_text()
    await reviewer.locator("[data-flag=photo_capture_outside_visit]").first.wait_for()
    await shoot(reviewer, "console-review-audit-en")
    await reviewer.click("[data-test=release]")
    await reviewer.locator("[data-test=review-done]").wait_for()
    await drain(console_world.services)

    head = await desk("zh-CN", viewport=PHONE)
    await console_sign_in(head, console_world, "branch_head")
    await head.locator("[data-test=latest-audit]").first.wait_for()
    assert await head.locator("[data-test=open-count]").inner_text() == "2"
    await shoot(head, "console-branch-dashboard-zh-CN-phone")
    # Live: another release reaches the open page through the notification stream, without a reload.
    unread = head.locator("[data-test=unread-count]")
    before = await unread.inner_text() if await unread.count() else ""
    await released_audit(console_world)
    await drain(console_world.services)
    await head.wait_for_function(
        "(before) => (document.querySelector('[data-test=unread-count]')?.textContent ?? '') !== before", arg=before)
    await head.locator("[data-test=latest-audit] a").first.click()
    await head.locator("[data-test=audit-rectification]").nth(1).wait_for()
    await head.locator("[data-item=hall_clean] [data-test=photo]").first.wait_for()
    await shoot(head, "console-branch-audit-zh-CN-phone")

    await head.click("[data-test=nav-branch-rectifications]")
    rects = head.locator("[data-test=rectification]")
    await rects.nth(1).wait_for()
    await shoot(head, "console-branch-rectifications-zh-CN-phone")
    await rects.first.locator("a").click()
    await head.locator("[data-test=photo-required]").wait_for()
    assert await head.locator("[data-test=submit-fix]").is_disabled()
    await throttle(head, THREE_G)
    await head.set_input_files("[data-test=fix-photo]", files=[
        {"name": "fixed.jpg", "mimeType": JPEG, "buffer": phone_photo(seed=71, size_bytes=600_000)}])
    await head.locator("[data-test=after-photos] img").first.wait_for(timeout=60_000)
    await head.fill("[data-test=fix-note]", "大堂已清洁")
    await head.click("[data-test=submit-fix]")
    await head.locator("[data-test=done]").wait_for(timeout=30_000)
    await shoot(head, "console-branch-fix-submitted-zh-CN-phone")
    rect_id = head.url.rstrip("/").split("/")[-1]
    stored = await console_world.api.json("GET", f"/api/v1/rectifications/{rect_id}", "compliance", expect=200)
    assert stored["status"] == "submitted" and stored["note"] == "大堂已清洁" and len(stored["photo_ids"]) == 1


async def test_an_appeal_inside_the_window_is_filed_and_one_after_it_is_refused(
        desk: NewPage, console_world: ConsoleWorld) -> None:
    audit = await released_audit(console_world, fail=("hall_clean", "wait_minutes"))
    await drain(console_world.services)
    findings = {f["item_id"]: f["id"] for f in audit["findings"]}
    head = await desk("en")
    await console_sign_in(head, console_world, "branch_head")
    await choose_language(head, "en")  # the demo branch head's own language is zh-CN
    await head.click("[data-test=nav-branch-findings]")
    hall = head.locator(f"[data-finding='{findings['hall_clean']}']")
    await hall.locator("[data-test=countdown]").wait_for()
    assert "13 d" in await hall.locator("[data-test=countdown]").inner_text()
    await shoot(head, "console-branch-findings-en")
    await hall.locator("[data-test=appeal]").click()
    await head.fill("[data-test=appeal-reason]", "The hall was being cleaned at that moment")
    await head.set_input_files("[data-test=appeal-photos]", files=[
        {"name": "clean.jpg", "mimeType": JPEG, "buffer": phone_photo(seed=72)}])
    await head.click("[data-test=appeal-submit]")
    await head.locator("[data-test=appeal-filed]").wait_for()
    await hall.locator("[data-test=appeal-state]").wait_for()
    appeals = await console_world.api.json("GET", "/api/v1/appeals?status=pending", "compliance", expect=200)
    assert [a["finding_id"] for a in appeals["items"]] == [findings["hall_clean"]]
    assert len(appeals["items"][0]["photo_ids"]) == 1
    photo = await console_world.services.db.photos.find_one({"_id": appeals["items"][0]["photo_ids"][0]})
    assert photo is not None  # the appeal's own photo, not evidence of the finding's fix
    assert (photo["owner_type"], photo["finding_id"], photo["rectification_id"]) == (
        "appeal", findings["hall_clean"], None)

    console_world.clock.advance(timedelta(days=15))
    wait = head.locator(f"[data-finding='{findings['wait_minutes']}']")
    await wait.locator("[data-test=appeal]").click()
    await head.fill("[data-test=appeal-reason]", "Too late")
    await head.click("[data-test=appeal-submit]")
    await head.locator("[data-test=appeal-refused]").wait_for()
    await shoot(head, "console-branch-appeal-refused-en")
    await console_world.api.login("compliance")  # the moved clock expired the earlier token
    appeals = await console_world.api.json("GET", "/api/v1/appeals", "compliance", expect=200)
    assert len(appeals["items"]) == 1


async def test_results_and_repeat_findings_name_checklists_and_items_in_words(
        desk: NewPage, console_world: ConsoleWorld) -> None:
    for _ in range(2):  # the same item failed twice in a row: a repeat finding
        await released_audit(console_world, fail=("hall_clean",))
    await drain(console_world.services)
    head = await desk("zh-CN", viewport=PHONE)
    await console_sign_in(head, console_world, "branch_head")
    await head.goto("/app/branch/audits")
    row = head.locator("[data-test=audit-row]").first
    await row.locator("td", has_text="Browser visit (zh)").wait_for()
    assert KEY not in await head.locator("main").inner_text()

    analyst = await desk("zh-CN")
    await console_sign_in(analyst, console_world, "compliance")
    await analyst.goto("/app/reports")
    repeat = analyst.locator("[data-test=repeat-row]").first
    await repeat.locator("td", has_text="hall clean (zh)").wait_for()
    assert "hall_clean" not in await repeat.inner_text()


async def test_findings_closed_to_appeal_fold_under_the_ones_still_open(
        desk: NewPage, console_world: ConsoleWorld) -> None:
    world = console_world

    async def as_of(shift: timedelta) -> None:
        world.clock.advance(shift)
        for role in ("inspector", "compliance"):  # tokens are dated by the moved clock
            await world.api.login(role)

    await as_of(timedelta(days=-30))
    old = await released_audit(world, fail=("hall_clean",))  # its appeal window closed weeks ago
    await as_of(timedelta(days=30))
    new = await released_audit(world, fail=("wait_minutes",))
    await drain(world.services)
    closed = next(f["id"] for f in old["findings"] if f["item_id"] == "hall_clean")
    open_ = next(f["id"] for f in new["findings"] if f["item_id"] == "wait_minutes")

    head = await desk("en", viewport=PHONE)
    await console_sign_in(head, world, "branch_head")
    await choose_language(head, "en")
    await head.goto("/app/branch/findings")
    await head.locator(f"[data-findings-part=live] [data-finding='{open_}'] [data-test=appeal]").wait_for()
    fold = head.locator("[data-findings-part=earlier]")
    assert "(1)" in await fold.locator("summary").inner_text()
    assert not await fold.locator(f"[data-finding='{closed}']").is_visible()
    await fold.locator("summary").click()
    await fold.locator(f"[data-finding='{closed}']").wait_for()
    assert not await fold.locator("[data-test=appeal]").count()
