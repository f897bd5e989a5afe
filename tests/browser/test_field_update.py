"""A new version of the app (a changed service worker) waits while an audit is open, and takes over as
soon as the inspector leaves it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from server.http import webapp
from tests.browser.conftest import FieldWorld, NewPage, service_worker_ready, shoot, sign_in
from tests.browser.field_steps import answer, open_visit_and_start


async def test_an_update_waits_until_no_audit_is_open(phone: NewPage, field_world: FieldWorld, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    build = tmp_path / "app"
    shutil.copytree(webapp.app_dir(), build)
    monkeypatch.setattr(webapp, "app_dir", lambda: build)
    page = await phone("en")
    await sign_in(page, field_world)
    await service_worker_ready(page)
    await open_visit_and_start(page)
    await answer(page, "hall_clean", "yes")
    await page.evaluate("() => { window.sameDocument = true; }")

    # A new release: the service worker's bytes change.
    worker = build / "sw.js"
    worker.write_text(worker.read_text(encoding="utf-8") + "\n// the next release\n", encoding="utf-8")
    await page.evaluate("() => navigator.serviceWorker.getRegistration().then((r) => r.update())")
    await page.locator("[data-test=update-waiting]").wait_for()
    await page.wait_for_timeout(500)
    assert await page.evaluate("() => window.sameDocument === true"), "the open audit was reloaded"
    assert await page.evaluate("() => navigator.serviceWorker.getRegistration().then((r) => Boolean(r.waiting))")
    await shoot(page, "update-waiting")

    # Leaving the audit applies it: the new worker takes over and the app reloads once.
    await page.click(".app-nav a[href='/app/visits']")
    await page.wait_for_function("() => window.sameDocument === undefined")
    await page.locator("[data-test=visit]").first.wait_for()
    assert not await page.evaluate("() => navigator.serviceWorker.getRegistration().then((r) => Boolean(r.waiting))")
    assert await page.locator("[data-test=update-waiting]").count() == 0
