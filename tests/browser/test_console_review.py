"""Compliance reviews: an audit done on the inspector's phone is returned with a reusable comment and the
field app shows it; the review queue releases several audits at once; an appeal shows its re-score
before the overturn is confirmed; a fix is rejected with a new due date the branch head then sees."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import FormData

from server.jobs.dispatcher import drain
from tests.browser.conftest import PHONE, FieldWorld, NewPage, phone_photo, shoot, sign_in
from tests.browser.console_steps import (
    DESKTOP,
    ConsoleWorld,
    console_sign_in,
    console_world,
    desk,
    released_audit,
    settings,
    streams_ended,
    submitted_audit,
)
from tests.browser.field_steps import answer_environment, answer_service, open_visit_and_start, submit

__all__ = ["console_world", "desk", "settings"]


async def test_a_returned_audit_shows_its_comment_in_the_inspectors_field_app(
        phone: NewPage, field_world: FieldWorld) -> None:
    inspector = await phone("en")
    await sign_in(inspector, field_world)
    audit_id = await open_visit_and_start(inspector)
    photos = [(f"p{n}.jpg", phone_photo(seed=40 + n)) for n in range(2)]
    await answer_environment(inspector, photos)
    await answer_service(inspector, [])
    await submit(inspector)

    reviewer = await phone("en")
    await reviewer.set_viewport_size(DESKTOP)
    await reviewer.goto("/app/login")
    await reviewer.fill("#username", field_world.credentials["compliance"]["username"])
    await reviewer.fill("#password", field_world.credentials["compliance"]["password"])
    await reviewer.click("button[type=submit]")
    await reviewer.wait_for_url("**/app/review")
    await reviewer.locator(f"[data-audit='{audit_id}'] a").click()
    await reviewer.click("[data-test=return]")
    await reviewer.select_option("[data-test=reusable]", index=1)
    comment = await reviewer.input_value("[data-test=return-comment]")
    assert comment
    await shoot(reviewer, "console-review-return-dialog-en")
    await reviewer.click("[data-test=confirm-return]")
    await reviewer.locator("[data-test=review-done]").wait_for()
    audit = await field_world.api.json("GET", f"/api/v1/audits/{audit_id}", "compliance", expect=200)
    assert audit["status"] == "returned" and audit["returned_comment"] == comment

    await inspector.goto("/app/sent")
    returned = inspector.locator("[data-test=returned]")
    await returned.wait_for()
    await inspector.get_by_text(comment).wait_for()
    await shoot(inspector, "console-returned-in-field-app-en-phone")
    await reviewer.close()
    await streams_ended(field_world.services)


async def test_the_queue_releases_several_audits_at_once(desk: NewPage, console_world: ConsoleWorld) -> None:
    audits = [await submitted_audit(console_world) for _ in range(3)]
    reviewer = await desk("zh-CN")
    await console_sign_in(reviewer, console_world, "compliance")
    rows = reviewer.locator("[data-test=queue-row]")
    await rows.nth(2).wait_for()
    await rows.first.locator(".flag").first.wait_for()
    for audit in audits[:2]:
        await reviewer.locator(f"[data-audit='{audit['audit_id']}'] [data-test=select]").check()
    await shoot(reviewer, "console-review-queue-zh-CN")
    await reviewer.click("[data-test=bulk-release]")
    await reviewer.locator("[data-test=bulk-report]").wait_for()
    await rows.nth(1).wait_for(state="detached")
    assert await rows.count() == 1
    for audit, status in zip(audits, ("released", "released", "submitted"), strict=True):
        stored = await console_world.api.json("GET", f"/api/v1/audits/{audit['audit_id']}", "compliance", expect=200)
        assert stored["status"] == status


async def test_the_queue_on_a_phone_is_cards_readable_without_scrolling_sideways(
        desk: NewPage, console_world: ConsoleWorld) -> None:
    overt = await submitted_audit(console_world)
    covert = await submitted_audit(console_world, "mystery_shopper", covert=True)
    reviewer = await desk("zh-CN", viewport=PHONE)
    await console_sign_in(reviewer, console_world, "compliance")
    rows = reviewer.locator("[data-test=queue-row]")
    await rows.nth(1).wait_for()
    await rows.first.locator(".flag").first.wait_for()
    await shoot(reviewer, "console-review-queue-zh-CN-phone-cards")
    page_width = await reviewer.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    assert page_width[0] <= page_width[1], f"the page scrolls sideways: {page_width}"
    # The navigation is one row (it scrolls sideways in itself) with the current screen's link in view.
    tops = await reviewer.evaluate("() => [...document.querySelectorAll('.console-nav li')].map((li) => li.offsetTop)")
    assert len(set(tops)) == 1, tops
    await reviewer.click("[data-test=nav-trail]")
    await reviewer.locator("[data-test=trail-hint]").wait_for()
    current = await reviewer.locator("[data-test=nav-trail]").bounding_box()
    assert current and current["x"] >= 0 and current["x"] + current["width"] <= PHONE["width"] - 32, current
    await reviewer.go_back()
    assert not await reviewer.locator(".table-scroll table thead").is_visible()
    for audit in (overt, covert):
        row = reviewer.locator(f"[data-audit='{audit['audit_id']}']")
        box = await row.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        # Every fact of the row is on screen, named by its column, inside the card.
        cells = await row.evaluate("""(tr) => [...tr.querySelectorAll('td[data-label]')].map((td) => {
            const r = td.getBoundingClientRect();
            return {label: getComputedStyle(td, '::before').content, text: td.innerText.trim(),
                    left: r.left, right: r.right, height: r.height};
        })""")
        assert [c["label"] for c in cells] == ['"提交时间"', '"检查人"', '"得分"', '"标记"']
        for cell in cells:
            assert cell["height"] > 0 and cell["left"] >= box["x"] and cell["right"] <= box["x"] + box["width"], cell
            assert cell["text"], cell
        link = row.get_by_role("link")
        target = await row.locator("label.check-target").bounding_box()
        link_box = await link.bounding_box()
        assert target and target["width"] >= 44 and target["height"] >= 44
        assert link_box and link_box["height"] >= 44 and link_box["x"] + link_box["width"] <= PHONE["width"]
    covert_row = reviewer.locator(f"[data-audit='{covert['audit_id']}']")
    assert "暗访" in await covert_row.inner_text()
    # The 44 px target selects the audit even when the tap misses the box itself.
    target = await covert_row.locator("label.check-target").bounding_box()
    assert target
    await reviewer.mouse.click(target["x"] + target["width"] - 3, target["y"] + target["height"] - 3)
    assert await covert_row.locator("[data-test=select]").is_checked()
    assert await reviewer.locator("[data-test=bulk-release]").inner_text() == "发布所选（1）"
    await reviewer.locator("[data-test=select-all-narrow]").click()
    assert await reviewer.locator("[data-test=bulk-release]").inner_text() == "发布所选（2）"
    await reviewer.locator(f"[data-audit='{overt['audit_id']}'] a").click()
    await reviewer.wait_for_url(f"**/app/review/audits/{overt['audit_id']}")
    # At desktop size the same screen is a table again.
    await reviewer.set_viewport_size(DESKTOP)
    await reviewer.goto("/app/review")
    await rows.nth(1).wait_for()
    assert await reviewer.locator(".table-scroll table thead").is_visible()
    assert not await reviewer.locator("[data-test=select-all-narrow]").is_visible()


async def test_appeal_rescore_is_shown_before_the_overturn_and_a_rejected_fix_gets_a_new_due_date(
        desk: NewPage, console_world: ConsoleWorld) -> None:
    audit = await released_audit(console_world, fail=("hall_clean", "atm_working"))
    await drain(console_world.services)
    findings = {f["item_id"]: f["id"] for f in audit["findings"]}
    await console_world.api.json("POST", f"/api/v1/findings/{findings['atm_working']}/appeal", "branch_head",
                                 expect=201, json={"reason": "The ATM was being refilled"})
    rects = await console_world.api.json("GET", "/api/v1/rectifications", "branch_head", expect=200)
    hall = next(r for r in rects["items"] if r["item_id"] == "hall_clean")
    form = FormData()
    form.add_field("file", phone_photo(seed=90), filename="after.jpg", content_type="image/jpeg")
    resp = await console_world.api.call("POST", f"/api/v1/rectifications/{hall['id']}/photos", "branch_head",
                                        data=form)
    assert resp.status == 201, await resp.text()
    await console_world.api.json("POST", f"/api/v1/rectifications/{hall['id']}/submit", "branch_head", expect=200,
                                 json={"note": "Cleaned"})

    reviewer = await desk("en")
    await console_sign_in(reviewer, console_world, "compliance")
    await reviewer.click("[data-test=nav-review-appeals]")
    card = reviewer.locator("[data-test=appeal-card]")
    await card.wait_for()
    await card.locator("[data-test=overturn]").check()
    rescore = card.locator("[data-test=rescore]")
    await rescore.wait_for()
    text = await rescore.inner_text()
    assert "(F)" in text and text.index("(F)") < text.rindex("(")
    await card.locator("[data-test=decision-comment]").fill("Cash carrier log confirms the refill")
    await shoot(reviewer, "console-review-appeal-rescore-en")
    await card.locator("[data-test=confirm-decision]").click()
    await reviewer.locator("[data-test=done]").wait_for()
    stored = await console_world.api.json("GET", f"/api/v1/audits/{audit['audit_id']}", "compliance", expect=200)
    assert stored["grade"] != "F" and not stored["critical_failed"]

    await reviewer.click("[data-test=nav-review-fixes]")
    fix = reviewer.locator("[data-test=fix-card]")
    await fix.locator("img").nth(1).wait_for()
    await shoot(reviewer, "console-review-fixes-before-after-en")
    await fix.locator("[data-test=fix-comment]").fill("The floor is still wet in the photo")
    due = (console_world.clock.now() + timedelta(days=5)).strftime("%Y-%m-%d") + "T17:00"
    await fix.locator("[data-test=fix-due]").fill(due)
    await fix.locator("[data-test=reject]").click()
    await reviewer.locator("[data-test=done]").wait_for()
    rejected = await console_world.api.json("GET", f"/api/v1/rectifications/{hall['id']}", "compliance", expect=200)
    assert rejected["due_at_local"].startswith(due)

    head = await desk("en", viewport=PHONE)
    await console_sign_in(head, console_world, "branch_head")
    await head.goto(f"/app/branch/rectifications/{hall['id']}")
    rejection = head.locator("[data-test=rejection]")
    await rejection.wait_for()
    assert "still wet" in await rejection.inner_text()
    await shoot(head, "console-branch-rejection-en-phone")
