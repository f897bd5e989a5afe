"""History: the filters live in the URL (a reload keeps them), and the CSV the browser downloads from the
history screen through a single-use ticket equals GET /exports/audits.csv for the same filter; the download
link carries a ticket, never the access token."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from tests.browser.conftest import shoot
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

__all__ = ["console_world", "desk", "settings"]


async def test_history_csv_download_equals_the_export_for_the_same_filter(
        desk: NewPage, console_world: ConsoleWorld) -> None:
    for fail in (("hall_clean",), ("wait_minutes",), ("hall_clean", "wait_minutes")):
        await released_audit(console_world, fail=fail)
    await submitted_audit(console_world)
    page = await desk("en")
    await console_sign_in(page, console_world, "compliance")
    await page.click("[data-test=nav-history]")
    await page.locator("[data-test=history-row]").nth(3).wait_for()
    await page.select_option("[data-test=f-status]", "released")
    await page.fill("[data-test=f-min]", "50")
    await page.click("[data-test=apply]")
    await page.wait_for_url("**/app/history?*status=released*")
    query = parse_qs(urlparse(page.url).query)
    assert query["status"] == ["released"] and query["min_score"] == ["50"]
    await page.reload()
    rows = page.locator("[data-test=history-row]")
    await rows.nth(2).wait_for()
    assert await rows.count() == 3
    assert await page.input_value("[data-test=f-min]") == "50"
    await shoot(page, "console-history-en")

    async with page.expect_download() as download_info:
        await page.click("[data-test=export-csv]")
    download = await download_info.value
    downloaded = await asyncio.to_thread(Path(await download.path()).read_bytes)
    lang = "en"
    expected = await console_world.api.call(
        "GET", f"/api/v1/exports/audits.csv?status=released&min_score=50&lang={lang}", "compliance")
    assert expected.status == 200
    assert downloaded == await expected.read()
    assert downloaded.count(b"\n") >= 4  # a header and three audits
    token = console_world.api.tokens["compliance"]
    assert "/exports/audits.csv" in download.url and "ticket=" in download.url and token not in download.url
    async with console_world.api.session.get(download.url) as again:
        assert again.status == 401  # a ticket is single use
