"""Sessions on a phone: two tabs whose tokens expire together send one refresh; a forced re-login keeps
the queue; signing out warns about unsent work and clears that user's data."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from tests.browser.conftest import FieldWorld, NewPage, service_worker_ready, shoot, sign_in
from tests.browser.field_steps import answer, open_visit_and_start


async def test_two_tabs_expiring_together_send_one_refresh(phone: NewPage, field_world: FieldWorld) -> None:
    first = await phone("en")
    await sign_in(first, field_world)
    second = await phone(context=first.context)
    await second.goto("/app/visits")
    await second.locator("[data-test=visit]").first.wait_for()
    refreshes: list[str] = []  # each with the refresh token it presented, to tell a resend from a second rotation
    first.context.on("request",
                     lambda r: refreshes.append(str(r.post_data)) if r.url.endswith("/auth/refresh") else None)

    field_world.clock.advance(timedelta(seconds=field_world.services.settings.access_token_ttl_s + 60))
    # Both tabs call the API at once with the expired token.
    await asyncio.gather(first.reload(), second.reload())
    for page in (first, second):
        await page.locator("[data-test=visit]").first.wait_for()
    await asyncio.gather(first.wait_for_load_state("networkidle"), second.wait_for_load_state("networkidle"))
    assert len(refreshes) == 1, refreshes
    for page in (first, second):
        assert await page.locator("[role=alert]").count() == 0


async def revoke_sessions(world: FieldWorld) -> None:
    """The refresh token stops working (as after a password change elsewhere)."""
    user = await world.services.db.users.find_one({"username": world.login_of("inspector")["username"]})
    assert user is not None
    await world.services.db.sessions.update_many({"user_id": user["_id"]}, {"$set": {"revoked_at": world.clock.now()}})


async def test_a_forced_login_keeps_the_queue_and_sign_out_clears_it(phone: NewPage, field_world: FieldWorld) -> None:
    page = await phone("en")
    await sign_in(page, field_world)
    await service_worker_ready(page)
    audit_id = await open_visit_and_start(page)
    await page.context.set_offline(True)
    await answer(page, "hall_clean", "yes")
    await answer(page, "signage", "rating-4")

    # Offline long enough for the access token to expire, and the session was ended on the server.
    field_world.clock.advance(timedelta(seconds=field_world.services.settings.access_token_ttl_s + 60))
    await revoke_sessions(field_world)
    field_world.api.tokens.clear()  # the test's own tokens expired too
    await page.context.set_offline(False)
    await page.locator("[data-test=sync-dot]").wait_for()
    await page.locator(".notice.error[role=alert]").wait_for()
    await shoot(page, "login-needed")

    # The same inspector signs in again: the queued answers go out.
    await page.goto("/app/login")
    assert await page.input_value("#username") == field_world.login_of("inspector")["username"]
    await page.fill("#password", field_world.login_of("inspector")["password"])
    await page.click("button[type=submit]")
    await page.wait_for_url("**/app/visits")
    answers: dict[str, Any] = {}
    for _ in range(100):
        resp = await field_world.api.call("GET", f"/api/v1/audits/{audit_id}", "compliance")
        answers = (await resp.json())["answers"] if resp.status == 200 else {}
        if len(answers) == 2:
            break
        await asyncio.sleep(0.1)
    assert {k: v["value"] for k, v in answers.items()} == {"hall_clean": True, "signage": 4}

    # Unsent work: sign-out warns, then clears this user's database.
    await page.context.set_offline(True)
    await page.goto(f"/app/audits/{audit_id}")
    await answer(page, "atm_working", "yes")
    await page.locator("[data-test=sync-dot]", has_text="1").wait_for()  # stored and queued before leaving
    await page.goto("/app/settings")
    await page.click("[data-test=sign-out]")
    await page.locator("[data-test=unsent-warning]").wait_for()
    await shoot(page, "sign-out-warning")
    await page.click("[data-test=confirm-sign-out]")
    await page.wait_for_url("**/app/login")
    databases = await page.evaluate("indexedDB.databases().then(list => list.map(d => d.name))")
    assert not [name for name in databases if ":user:" in name], databases
