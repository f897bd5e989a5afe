"""Covert secrecy end to end: after a mystery shopper's covert audit is released, the branch head's pages,
every network response their browser received and its storage (localStorage, sessionStorage, IndexedDB,
Cache Storage) hold neither the shopper's id, username or name, nor the minute of the visit."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

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

DUMP_STORAGE = """async () => {
  const read = (request) => new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const out = { local: JSON.stringify({ ...localStorage }), session: JSON.stringify({ ...sessionStorage }),
                idb: [], caches: [] };
  for (const info of await indexedDB.databases()) {
    const db = await read(indexedDB.open(info.name));
    for (const name of db.objectStoreNames) {
      const rows = await read(db.transaction(name).objectStore(name).getAll());
      out.idb.push(JSON.stringify({ db: info.name, store: name, rows }));
    }
    db.close();
  }
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    for (const request of await cache.keys()) {
      const response = await cache.match(request);
      // The app shell's own files (code and messages, the same for everyone) are not data about anyone.
      const shell = new URL(request.url).pathname.startsWith("/app/");
      const type = response.headers.get("Content-Type") || "";
      const text = !shell && /json|text|javascript|html/.test(type) ? await response.text() : "";
      out.caches.push(JSON.stringify({ url: request.url, text }));
    }
  }
  return out;
}"""


def secrets_of(shopper: dict[str, Any], started_at: str, timezone: str) -> dict[str, list[str]]:
    """What must never reach the branch: in every representation a page or a response could use."""
    from datetime import datetime

    at = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    local = at.astimezone(ZoneInfo(timezone))
    minute_forms = [f"{t:%Y-%m-%dT%H:%M}" for t in (at, local)] + [f"{t:%Y-%m-%d %H:%M}" for t in (at, local)]
    return {
        "identity": [shopper["id"], shopper["username"], shopper["display_name"]],
        "minute": minute_forms,
        # On screen a time is shown as HH:MM in the branch's zone (any date format around it).
        "screen_minute": [f"{local:%H:%M}", f"{local:%-I:%M}"],
    }


def leaks(text: str, needles: list[str]) -> list[str]:
    """Needles found as whole tokens ("shopper" the username, not inside the role word "mystery_shopper")."""
    return [n for n in needles if n and re.search(rf"(?<![\w.]){re.escape(n)}(?!\w)", text)]


async def test_a_branch_head_never_learns_the_shopper_or_the_minute_of_a_covert_visit(
        desk: NewPage, console_world: ConsoleWorld) -> None:
    audit = await released_audit(console_world, "mystery_shopper", covert=True, fail=("hall_clean", "wait_minutes"),
                                 started_ago=timedelta(minutes=47))
    await drain(console_world.services)
    full = await console_world.api.json("GET", f"/api/v1/audits/{audit['audit_id']}", "compliance", expect=200)
    assert full["covert"] is True
    shopper = await console_world.user("mystery_shopper")
    secrets = secrets_of(shopper, full["started_at"], audit["branch"]["timezone"])
    # The needles are real: compliance's view of the same audit carries both (so this test can fail).
    compliance_view = json.dumps(full, ensure_ascii=False)
    assert leaks(compliance_view, secrets["identity"]) and leaks(compliance_view, secrets["minute"])

    page = await desk("en", viewport=PHONE)
    bodies: list[tuple[str, bytes]] = []
    responses: list[Any] = []
    page.on("response", lambda response: responses.append(response))
    await console_sign_in(page, console_world, "branch_head")
    screens: list[tuple[str, str]] = []

    async def visit(name: str, ready: str) -> None:
        await page.locator(ready).first.wait_for()
        await page.wait_for_timeout(400)  # the screen's other requests (the live stream keeps the network busy)
        screens.append((name, await page.content()))

    await visit("dashboard", "[data-test=latest-audit]")
    await page.click("[data-test=nav-branch-audits]")
    await visit("audits", "[data-test=audit-row]")
    await page.locator("[data-test=audit-row] a").first.click()
    await visit("audit", "[data-item=hall_clean] img[src^='blob:']")
    await shoot(page, "console-covert-audit-branch-en-phone")
    await page.click("[data-test=nav-branch-findings]")
    await visit("findings", "[data-test=finding]")
    await page.click("[data-test=nav-branch-rectifications]")
    await visit("rectifications", "[data-test=rectification]")
    await page.locator("[data-test=rectification] a").first.click()
    await visit("rectification", "[data-test=due]")
    await page.click("[data-test=nav-notifications]")
    await visit("notifications", "[data-test=notification]")
    storage = await page.evaluate(DUMP_STORAGE)

    for response in responses:
        # The stream never ends; its events are the same documents GET /notifications returned. Redirects
        # have no body.
        if "/notifications/stream" not in response.url and not 300 <= response.status < 400:
            bodies.append((response.url, await response.body()))
    api_bodies = [(url, body) for url, body in bodies if "/api/v1/" in url]
    assert any("/audits/" in url for url, _ in api_bodies) and any("/photos/" in url for url, _ in api_bodies)

    found: list[str] = []
    on_screen = secrets["identity"] + secrets["minute"] + secrets["screen_minute"]
    for name, html in screens:
        found += [f"page {name}: {n}" for n in leaks(html, on_screen)]
    for url, body in bodies:
        text = body.decode("utf-8", "replace")
        found += [f"response {url}: {n}" for n in leaks(text, secrets["identity"] + secrets["minute"])]
    stored = json.dumps(storage, ensure_ascii=False)
    found += [f"storage: {n}" for n in leaks(stored, on_screen)]
    assert not found, found
    # The service worker keeps no API answer (only the app shell).
    assert not [c for c in storage["caches"] if "/api/" in json.loads(c)["url"]]
