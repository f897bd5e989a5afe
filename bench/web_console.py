"""The console in a real browser (`python -m bench.web_console`): what its first load costs, what each lazy
chunk costs (KB gzip), and the history screen's time to its first 50 rows at 10,000 audits.

Runs the built app (make web) on the real server in this process, on a throwaway embedded database with
the demo organisation and 10,000 generated audits (server.commands.generate), driven by Debian's chromium:
- first load: every asset a cold browser fetches from the sign-in page to the console home, per role;
- lazy chunks: every JS and CSS file of the build with its gzip size, and which screens load it (the
  reports page adds the chart library);
- history: from navigation start (performance.now) to 50 rows on screen, cold and warm, and by a click
  from another console screen (the app already running).
BENCH_HISTORY_AUDITS (10000) and BENCH_WEB_ROUNDS (7) change the size and rounds."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, save, table
from bench.served import served_demo
from server.commands.generate import generate_history
from server.context import Services
from server.http.webapp import app_dir

AUDITS = int(os.environ.get("BENCH_HISTORY_AUDITS", "10000"))
ROUNDS = int(os.environ.get("BENCH_WEB_ROUNDS", "7"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
HOMES = {"compliance": "**/app/review", "branch_head": "**/app/branch", "regional_manager": "**/app/region"}
ROWS_SHOWN = "() => document.querySelectorAll('[data-test=history-row]').length >= 50"


def gzip_kb(path: Path) -> float:
    return round(len(gzip.compress(path.read_bytes(), compresslevel=9)) / 1024, 1)


def asset_sizes() -> dict[str, float]:
    assets = app_dir() / "assets"
    return {p.name: gzip_kb(p) for p in sorted(assets.iterdir()) if p.suffix in (".js", ".css")}


class Fetched:
    """Which built assets a page fetched (by file name)."""

    def __init__(self, page: Any) -> None:
        self.names: list[str] = []
        page.on("request", self._seen)

    def _seen(self, request: Any) -> None:
        if "/app/assets/" in request.url:
            name = request.url.rsplit("/", 1)[-1].split("?")[0]
            if name not in self.names:
                self.names.append(name)

    def since(self, mark: int) -> list[str]:
        return self.names[mark:]


async def sign_in(page: Any, credentials: dict[str, str], role: str) -> None:
    await page.goto("/app/login")
    await page.fill("#username", credentials["username"])
    await page.fill("#password", credentials["password"])
    await page.click("button[type=submit]")
    await page.wait_for_url(HOMES[role])
    await page.locator(".console-nav").wait_for()


async def measure(base: str, demo: dict[str, dict[str, str]], sizes: dict[str, float]) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    def kb(names: list[str]) -> float:
        return round(sum(sizes.get(n, 0.0) for n in names), 1)

    figures: dict[str, Any] = {"first_load": {}, "lazy": {}}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        try:
            for role in HOMES:
                context = await browser.new_context(base_url=base, viewport={"width": 1280, "height": 900},
                                                    service_workers="block")
                page = await context.new_page()
                fetched = Fetched(page)
                await page.goto("/app/login")
                await page.locator("#username").wait_for()
                login_assets = list(fetched.names)
                await sign_in(page, demo[role], role)
                await page.wait_for_timeout(500)
                home = fetched.since(0)
                figures["first_load"][role] = {
                    "sign_in_page_kb_gzip": kb(login_assets),
                    "through_console_home_kb_gzip": kb(home),
                    "console_added_kb_gzip": kb([n for n in home if n not in login_assets]),
                    "files": len(home),
                }
                if role == "compliance":
                    for screen, ready in (("reports", "[data-test=report-scorecard]"),
                                          ("history", "[data-test=history-row]"),
                                          ("programs", "[data-test=program-row], [data-test=programs-empty], "
                                                       "[data-test=error]")):
                        mark = len(fetched.names)
                        await page.click(f"[data-test=nav-{screen}]")
                        try:
                            await page.locator(ready).first.wait_for(timeout=60_000)
                        except Exception:
                            await page.screenshot(path=str(ROOT / "var" / f"bench-{screen}.png"), full_page=True)
                            raise
                        await page.wait_for_timeout(300)
                        if await page.locator("[data-test=error]").count():
                            print(f"{screen}: {await page.locator('[data-test=error]').first.inner_text()}",
                                  file=sys.stderr)
                        added = fetched.since(mark)
                        figures["lazy"][screen] = {"kb_gzip": kb(added), "files": {n: sizes.get(n) for n in added}}
                    figures["history"] = await history_timing(page)
                await context.close()
        finally:
            await browser.close()
    figures["chunks_kb_gzip"] = sizes
    chart = {n: s for n, s in sizes.items() if n.startswith("UplotChart")}
    figures["chart_library_kb_gzip"] = round(sum(chart.values()), 1)
    return figures


async def history_timing(page: Any) -> dict[str, Any]:
    """Navigation start to 50 rows on screen: a full page load (cold first, then warm) and an in-app click."""
    loads: list[float] = []
    for _ in range(ROUNDS):
        await page.goto("/app/history")
        await page.wait_for_function(ROWS_SHOWN, timeout=60_000)
        loads.append(await page.evaluate("() => performance.now()"))
    clicks: list[float] = []
    for _ in range(ROUNDS):
        await page.click("[data-test=nav-reports]")
        await page.locator("[data-test=report-scorecard]").wait_for(timeout=60_000)
        started = await page.evaluate("() => performance.now()")
        await page.click("[data-test=nav-history]")
        await page.wait_for_function(ROWS_SHOWN, timeout=60_000)
        clicks.append(await page.evaluate("() => performance.now()") - started)
    return {
        "page_load_first_ms": round(loads[0]),
        "page_load_median_ms": round(statistics.median(loads[1:] or loads)),
        "in_app_click_median_ms": round(statistics.median(clicks)),
        "in_app_click_max_ms": round(max(clicks)),
        "rounds": ROUNDS,
    }


async def main_async() -> dict[str, Any]:
    async def history(services: Services) -> None:
        started = time.perf_counter()
        await generate_history(services, count=AUDITS, branches=None, months=24, seed=7)
        print(f"seeded {AUDITS} audits in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)

    # Seeding 10,000 audits outlasts the API's socket timeout and a short heartbeat.
    async with served_demo("console", history, db_socket_timeout_ms=0, db_heartbeat_timeout_ms=600_000) as served:
        figures = await measure(served.base, served.demo, asset_sizes())
        figures["audits"] = await served.services.db.audits.count_documents({})
    return figures


def report(figures: dict[str, Any]) -> str:
    rows = [(f"first load {role}", f"{f['through_console_home_kb_gzip']} KB gzip in {f['files']} files "
             f"(sign-in page {f['sign_in_page_kb_gzip']}, console adds {f['console_added_kb_gzip']})")
            for role, f in figures["first_load"].items()]
    rows += [(f"lazy: {screen}", f"{lazy['kb_gzip']} KB gzip: {', '.join(lazy['files'])}")
             for screen, lazy in figures["lazy"].items()]
    rows.append(("chart library (uPlot chunk)", f"{figures['chart_library_kb_gzip']} KB gzip"))
    h = figures["history"]
    rows.append((f"history, first 50 rows of {figures['audits']}",
                 f"page load {h['page_load_first_ms']} ms cold, {h['page_load_median_ms']} ms warm (median); "
                 f"in-app click {h['in_app_click_median_ms']} ms (median), {h['in_app_click_max_ms']} ms max"))
    return table(rows)


def main() -> None:
    figures = asyncio.run(main_async())
    save("web_console", figures)
    print(report(figures))
    print(json.dumps(figures["history"]), file=sys.stderr)


if __name__ == "__main__":
    main()
