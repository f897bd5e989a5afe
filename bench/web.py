"""The field app in a real browser (`python -m bench.web`): how much it weighs, how fast it starts on 3G,
and how long Submit takes to be acknowledged.

Runs the built app (make web) on the real server in this process, on a throwaway embedded database with the
demo organisation, driven by Debian's chromium at phone size (360x780):
- field bundle: every JS and CSS file the field screens load (sign-in, visits, brief, check-in, runner,
  review, result, sent, sync, settings), gzip level 9, against the 150 KB budget; and the whole precache
  the service worker fetches in the background on the first visit;
- first load on emulated 3G (Chromium's "Fast 3G": 562.5 ms RTT, 1.44 Mbit/s down, 675 kbit/s up): from
  navigation to the sign-in form, and to my visits after signing in;
- installed start on 3G: the app opened again with its service worker and a stored session, to my visits;
- tap Submit to acknowledgement, online: an audit answered and its photo sent, then from the tap on Submit to
  the score on screen (the server's answer), BENCH_WEB_ROUNDS (5) times;
- an audit with five 2 MB camera photos on 3G, from check-in to the score on screen, with photos at original
  size and reduced to 2048 px (the setting for a weak signal)."""

from __future__ import annotations

import asyncio
import gzip
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import ClientSession

from bench.common import save, table
from bench.served import served_demo
from server.context import Services
from server.http.webapp import app_dir

ROUNDS = int(os.environ.get("BENCH_WEB_ROUNDS", "5"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"width": 360, "height": 780}
BUDGET_KB = 150
THREE_G = {"offline": False, "latency": 562.5, "downloadThroughput": 1.6e6 * 0.9 / 8,
           "uploadThroughput": 750e3 * 0.9 / 8}
AT_THE_BRANCH = {"latitude": 31.2398, "longitude": 121.4999, "accuracy": 25}


def gzip_kb(path: Path) -> float:
    return len(gzip.compress(path.read_bytes(), compresslevel=9)) / 1024


def build_sizes() -> dict[str, float]:
    root = app_dir()
    return {str(p.relative_to(root)): gzip_kb(p) for p in sorted(root.rglob("*")) if p.suffix in (".js", ".css")}


class Fetched:
    """Built JS and CSS files a page fetched, by path under /app/."""

    def __init__(self, context: Any) -> None:
        self.paths: list[str] = []
        context.on("request", self._seen)

    def _seen(self, request: Any) -> None:
        path = request.url.split("/app/", 1)[-1].split("?")[0] if "/app/" in request.url else ""
        if path.endswith((".js", ".css")) and path != "sw.js" and path not in self.paths:
            self.paths.append(path)


async def throttle(page: Any) -> None:
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.emulateNetworkConditions", THREE_G)


async def prepare(services: Services, api: Any, rounds: int) -> None:
    """The browser test's checklist and `rounds` visits for the demo inspector."""
    from tests.audit_factories import publish_checklist
    from tests.browser.conftest import browser_checklist, plan_visit

    await publish_checklist(services.db, browser_checklist(), now=datetime.now(UTC) - timedelta(days=1))
    for _ in range(rounds):
        await plan_visit(api, services.db)


async def phone_at_the_branch(browser: Any, base: str, service_workers: str) -> Any:
    return await browser.new_context(base_url=base, viewport=PHONE, service_workers=service_workers,
                                     geolocation=AT_THE_BRANCH, permissions=["geolocation"])


async def sign_in(context: Any, credentials: dict[str, str]) -> Any:
    """A new page of `context`, signed in and on my visits."""
    page = await context.new_page()
    await page.goto("/app/")
    await page.fill("#username", credentials["username"])
    await page.fill("#password", credentials["password"])
    await page.click("button[type=submit]")
    await page.wait_for_url("**/app/visits")
    return page


async def field_bundle(browser: Any, base: str, credentials: dict[str, str], sizes: dict[str, float]
                       ) -> dict[str, Any]:
    """Walk every field screen in a cold context (no service worker) and add up what it fetched."""
    from tests.browser.field_steps import answer_environment, answer_service, open_visit_and_start, submit

    context = await phone_at_the_branch(browser, base, "block")
    fetched = Fetched(context)
    page = await sign_in(context, credentials)
    await page.locator("[data-test=visit]").first.wait_for()
    audit_id = await open_visit_and_start(page)
    from tests.browser.conftest import phone_photo

    await answer_environment(page, [("a.jpg", phone_photo(1)), ("b.jpg", phone_photo(2))])
    await answer_service(page, [])
    await submit(page)
    await page.locator("[data-test=result]").wait_for(timeout=60_000)
    for screen in ("sent", "sync", "settings"):
        await page.goto(f"/app/{screen}")
        await page.wait_for_load_state("networkidle")
    await context.close()
    field = {p: round(sizes.get(p, 0.0), 1) for p in fetched.paths}
    return {"audit_id": audit_id, "kb_gzip": round(sum(field.values()), 1), "files": field}


async def starts_on_3g(browser: Any, base: str, credentials: dict[str, str]) -> dict[str, Any]:
    """First load (cold) and the installed app opened again, both on 3G."""
    context = await browser.new_context(base_url=base, viewport=PHONE, service_workers="allow")
    page = await context.new_page()
    await throttle(page)
    started = time.perf_counter()
    await page.goto("/app/")
    await page.locator("#username").wait_for()
    to_sign_in = time.perf_counter() - started
    await page.fill("#username", credentials["username"])
    await page.fill("#password", credentials["password"])
    tapped = time.perf_counter()
    await page.click("button[type=submit]")
    await page.locator("[data-test=visit]").first.wait_for(timeout=120_000)
    to_visits = time.perf_counter() - tapped
    await page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
    await page.wait_for_load_state("networkidle")
    installed: list[float] = []
    for _ in range(3):
        await page.close()
        page = await context.new_page()
        await throttle(page)
        started = time.perf_counter()
        await page.goto("/app/")
        await page.locator("[data-test=visit]").first.wait_for(timeout=120_000)
        installed.append(time.perf_counter() - started)
    await context.close()
    return {"first_load_to_sign_in_s": round(to_sign_in, 2), "sign_in_to_visits_s": round(to_visits, 2),
            "installed_start_to_visits_s": round(statistics.median(installed), 2),
            "installed_runs_s": [round(s, 2) for s in installed]}


async def signed_in_phone(browser: Any, base: str, credentials: dict[str, str]) -> tuple[Any, Any]:
    """A phone at the branch (service worker allowed), signed in and on my visits."""
    context = await phone_at_the_branch(browser, base, "allow")
    return context, await sign_in(context, credentials)


async def submit_to_ack(browser: Any, base: str, credentials: dict[str, str], rounds: int) -> dict[str, Any]:
    """Online: everything answered and sent, then the tap on Submit until the score is on screen."""
    from tests.browser.conftest import phone_photo
    from tests.browser.field_steps import answer_environment, answer_service

    context, page = await signed_in_phone(browser, base, credentials)
    timings: list[float] = []
    for n in range(rounds):
        await page.goto("/app/visits")
        await page.locator("[data-test=visit]").first.wait_for()
        # The first visit not started yet (its state badge reads ○).
        await page.locator("[data-test=visit]:has([data-test=visit-state]:has-text('○')) a").first.click()
        audit_id = await _start_from_brief(page)
        await answer_environment(page, [("a.jpg", phone_photo(100 + n)), ("b.jpg", phone_photo(200 + n))])
        await answer_service(page, [])
        await page.click("[data-test=to-review]")
        await page.locator("[data-test=ready]").wait_for()
        await _wait_all_sent(page)
        started = time.perf_counter()
        await page.click("[data-test=submit]")
        await page.locator("[data-test=result]").wait_for(timeout=60_000)
        timings.append((time.perf_counter() - started) * 1000)
        assert audit_id
    await context.close()
    return {"median_ms": round(statistics.median(timings)), "max_ms": round(max(timings)),
            "runs_ms": [round(t) for t in timings]}


async def three_g_audit(browser: Any, base: str, credentials: dict[str, str], photo_size: str) -> float:
    """Seconds from the check-in to the score on screen for an audit with five 2 MB camera photos, on 3G."""
    from tests.browser.conftest import camera_photo
    from tests.browser.field_steps import add_photos, answer_environment, answer_service, submit

    context, page = await signed_in_phone(browser, base, credentials)
    await page.goto("/app/settings")
    await page.select_option("#photo-size", photo_size)
    await page.goto("/app/visits")
    await page.locator("[data-test=visit]:has([data-test=visit-state]:has-text('○')) a").first.click()
    await throttle(page)
    started = time.perf_counter()
    await _start_from_brief(page)
    photos = [(f"camera-{n}.jpg", camera_photo(seed=300 + n)) for n in range(5)]
    await answer_environment(page, photos[:2])
    await add_photos(page, "lobby_photo", photos[2:3])
    await answer_service(page, photos[3:])
    await submit(page)
    await page.locator("[data-test=result]").wait_for(timeout=600_000)
    elapsed = time.perf_counter() - started
    await context.close()
    return round(elapsed, 1)


async def _start_from_brief(page: Any) -> str:
    await page.wait_for_url("**/app/visits/*")
    await page.click("[data-test=keep-offline]")
    await page.locator("[data-test=kept]").wait_for()
    await page.click("[data-test=go-checkin]")
    await page.locator("[data-test=distance]").wait_for()
    await page.click("[data-test=start]")
    await page.wait_for_url("**/app/audits/*")
    return str(page.url.rstrip("/").split("/")[-1])


async def _wait_all_sent(page: Any) -> None:
    """The outbox is empty (the sync centre's own count), so Submit is the only request left."""
    for _ in range(300):
        pending = await page.evaluate("""() => new Promise((resolve) => {
            const open = indexedDB.open('branch-audit');
            open.onsuccess = () => {
              const tx = open.result.transaction('session');
              const get = tx.objectStore('session').get('current');
              get.onsuccess = () => {
                const user = get.result.user.id;
                const db = indexedDB.open('branch-audit:user:' + user);
                db.onsuccess = () => {
                  const count = db.result.transaction('outbox').objectStore('outbox').count();
                  count.onsuccess = () => { resolve(count.result); db.result.close(); open.result.close(); };
                };
              };
            };
        })""")
        if pending == 0:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError("the outbox did not drain")


async def main_async() -> dict[str, Any]:
    from playwright.async_api import async_playwright

    from tests.conftest import Api

    async with served_demo("web") as served, ClientSession() as session, async_playwright() as playwright:
        sizes = build_sizes()
        base, inspector = served.base, served.demo["inspector"]
        await prepare(served.services, Api(session, base, served.demo), ROUNDS + 3)
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            figures: dict[str, Any] = {"budget_kb_gzip": BUDGET_KB}
            figures["field_bundle"] = await field_bundle(browser, base, inspector, sizes)
            figures["precache_kb_gzip"] = round(sum(sizes.values()), 1)
            figures["three_g"] = await starts_on_3g(browser, base, inspector)
            figures["submit_to_ack"] = await submit_to_ack(browser, base, inspector, ROUNDS)
            figures["three_g_five_2mb_photos_s"] = {
                size: await three_g_audit(browser, base, inspector, size) for size in ("2048", "original")
            }
        finally:
            await browser.close()
    return figures


def report(figures: dict[str, Any]) -> str:
    bundle = figures["field_bundle"]
    g = figures["three_g"]
    s = figures["submit_to_ack"]
    rows = [
        ("field bundle (JS + CSS, gzip)", f"{bundle['kb_gzip']} KB in {len(bundle['files'])} files "
                                          f"(budget {figures['budget_kb_gzip']} KB)"),
        ("whole precache (every screen)", f"{figures['precache_kb_gzip']} KB gzip, fetched by the service worker"),
        ("3G first load: to the sign-in form", f"{g['first_load_to_sign_in_s']} s"),
        ("3G: sign-in to my visits", f"{g['sign_in_to_visits_s']} s"),
        ("3G installed start: to my visits", f"{g['installed_start_to_visits_s']} s (median of "
                                              f"{', '.join(map(str, g['installed_runs_s']))})"),
        ("3G audit, five 2 MB photos, check-in to score", f"{figures['three_g_five_2mb_photos_s']['original']} s at "
         f"original size, {figures['three_g_five_2mb_photos_s']['2048']} s reduced to 2048 px"),
        ("tap Submit to acknowledgement, online", f"{s['median_ms']} ms median, {s['max_ms']} ms max "
                                                   f"({len(s['runs_ms'])} audits)"),
    ]
    return table(rows)


def main() -> None:
    figures = asyncio.run(main_async())
    save("web", figures)
    print(report(figures))


if __name__ == "__main__":
    main()
