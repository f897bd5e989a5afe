"""The console's test world: the field harness's server and demo organisation, with audits made through
the API the way phones make them (real photos with EXIF), for branch heads, managers and compliance."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import ClientSession, FormData

from server.context import Services
from server.settings import Settings
from tests.audit_factories import publish_checklist
from tests.browser.conftest import (
    BRANCH_CODE,
    KEY,
    PHONE,
    NewPage,
    ShiftingClock,
    browser_checklist,
    phone_photo,
    plan_visit,
    start_server,
    streams_ended,
)
from tests.conftest import Api

DESKTOP = {"width": 1280, "height": 900}
CONSOLE_HOME = {
    "branch_head": "**/app/branch",
    "regional_manager": "**/app/region",
    "compliance": "**/app/review",
}


@dataclass
class ConsoleWorld:
    """A running server with the demo organisation and the browser checklist published."""

    base: str
    api: Api
    services: Services
    clock: ShiftingClock
    credentials: dict[str, dict[str, str]]

    async def user(self, role: str) -> dict[str, Any]:
        me: dict[str, Any] = await self.api.json("GET", "/api/v1/me", role, expect=200)
        return me


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The harness's settings with a quick live stream: a heartbeat every half second lets the server notice a
    closed page (and end its stream handler) before the test server stops."""
    return settings.model_copy(update={"sse_poll_s": 0.25, "sse_heartbeat_s": 0.5})


@pytest.fixture
async def console_world(services: Services, demo: dict[str, dict[str, str]], clock: ShiftingClock
                        ) -> AsyncIterator[ConsoleWorld]:
    await publish_checklist(services.db, browser_checklist(), now=datetime.now(UTC) - timedelta(days=1))
    server = await start_server(services)
    async with ClientSession() as session:
        api = Api(session, str(server.make_url("")).rstrip("/"), demo)
        yield ConsoleWorld(api.base, api, services, clock, demo)
    await server.close()


def failing_answers(at: datetime, fail: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every visible item of the browser checklist answered; the items in `fail` fail."""
    values: dict[str, Any] = {
        "hall_clean": "hall_clean" not in fail,
        "signage": 2 if "signage" in fail else 5,
        "atm_working": "atm_working" not in fail,
        "lobby_photo": None,
        "greeted": True,
        "wait_minutes": 14 if "wait_minutes" in fail else 4,
        "time_to_greet": 12,
        "greeting_words": "standard",
        "farewell": ["smile", "words"],
        "badge_worn": True,
        "comments": "fine",
    }
    return [{"item_id": k, "value": v, "answered_at": at.isoformat()} for k, v in values.items()]


async def upload_photo(api: Api, who: str, audit_id: str, item_id: str, seed: int) -> dict[str, Any]:
    form = FormData()
    form.add_field("item_id", item_id)
    form.add_field("file", phone_photo(seed), filename=f"{item_id}.jpg", content_type="image/jpeg")
    photo: dict[str, Any] = await api.json("POST", f"/api/v1/audits/{audit_id}/photos", who, expect=201, data=form)
    return photo


async def submitted_audit(world: ConsoleWorld, who: str = "inspector", *, covert: bool = False,
                          fail: tuple[str, ...] = ("hall_clean", "wait_minutes"),
                          started_ago: timedelta = timedelta()) -> dict[str, Any]:
    """A visit to Lujiazui done by `who` through the API and submitted (a covert one planned, an overt one
    started at the branch); returns the submit result with the audit id, the branch and the photos."""
    audit_id = str(uuid.uuid4())
    now = world.clock.now() - started_ago
    start: dict[str, Any] = {"checklist_key": KEY, "started_at": now.isoformat(),
                             "location": {"lat": 31.2398, "lon": 121.4999, "accuracy_m": 25}}
    if covert:
        start["assignment_id"], branch = await plan_visit(world.api, world.services.db, who, covert=True)
    else:
        branches = await world.api.json("GET", "/api/v1/branches?limit=200", "compliance", expect=200)
        branch = next(b for b in branches["items"] if b["code"] == BRANCH_CODE)
        start["branch_id"] = branch["id"]
    await world.api.json("PUT", f"/api/v1/audits/{audit_id}", who, expect=201, json=start)
    photos = [await upload_photo(world.api, who, audit_id, "lobby_photo", seed=hash(audit_id) % 1000)]
    if "hall_clean" in fail:
        photos.append(await upload_photo(world.api, who, audit_id, "hall_clean", seed=hash(audit_id) % 1000 + 1))
    await world.api.json("PATCH", f"/api/v1/audits/{audit_id}/answers", who, expect=200,
                         json=failing_answers(now, fail))
    result: dict[str, Any] = await world.api.json("POST", f"/api/v1/audits/{audit_id}/submit", who, expect=200)
    return {**result, "audit_id": audit_id, "branch": branch, "photos": photos}


async def released_audit(world: ConsoleWorld, who: str = "inspector", **kw: Any) -> dict[str, Any]:
    audit = await submitted_audit(world, who, **kw)
    await world.api.json("POST", f"/api/v1/audits/{audit['audit_id']}/release", "compliance", expect=200)
    return audit


@pytest.fixture
async def desk(browser: Any, console_world: ConsoleWorld) -> AsyncIterator[NewPage]:
    """Open console pages (desktop size unless told); fails the test on CSP violations and page errors."""
    contexts: list[Any] = []
    problems: list[str] = []

    async def open_page(language: str = "en", *, viewport: dict[str, int] | None = None) -> Any:
        context = await browser.new_context(viewport=viewport or DESKTOP, device_scale_factor=1, locale=language,
                                            base_url=console_world.base, accept_downloads=True)
        contexts.append(context)
        page = await context.new_page()
        page.on("console", lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None)
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        return page

    yield open_page
    for context in contexts:
        await context.close()
    await streams_ended(console_world.services)
    assert not problems, problems


async def sideways(page: Any) -> list[str]:
    """What makes the page itself scroll sideways (a table may scroll inside its own region, the console's
    navigation in its row; the page may not): elements past the viewport's right edge outside those."""
    found: list[str] = await page.evaluate("""() => {
        const width = document.documentElement.clientWidth;
        if (document.documentElement.scrollWidth <= width) return [];
        const past = [...document.querySelectorAll('body *')].filter((el) =>
            el.getBoundingClientRect().right > width + 1 && !el.closest('.table-scroll, .console-nav ul'));
        const named = past.slice(0, 5).map((el) =>
            `${el.tagName.toLowerCase()}.${el.className} ${Math.round(el.getBoundingClientRect().right)}px`);
        return named.length ? named : ['the page scrolls sideways'];
    }""")
    return found


SMALL_TARGETS = """() => {
    const shown = (el) => {
        const r = el.getBoundingClientRect();
        return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== 'hidden';
    };
    const name = (el) => `${el.tagName.toLowerCase()}.${el.className} "${(el.textContent || '').trim().slice(0, 24)}"`;
    const controls = ['button:not(.link):not(.photo-zoom)', 'select', 'summary', 'a.tap', 'a.button',
        '.console-nav a', '.app-nav a',
        'input:not([type=checkbox]):not([type=radio]):not([type=file]):not([type=hidden])'];
    const out = [];
    for (const el of document.querySelectorAll(controls.join(', '))) {
        if (!shown(el) || el.closest('.visually-hidden, dialog:not([open])')) continue;
        const height = el.getBoundingClientRect().height;
        if (height < 43.5) out.push(`${name(el)} ${Math.round(height)}px`);
    }
    for (const box of document.querySelectorAll('input[type=checkbox], input[type=radio]')) {
        if (!shown(box) && !box.closest('.segmented')) continue;
        const target = box.closest('label') ?? box;
        const height = target.getBoundingClientRect().height;
        if (height > 0 && height < 43.5) out.push(`${box.type} in ${name(target)} ${Math.round(height)}px`);
    }
    return out.slice(0, 8);
}"""


async def small_targets(page: Any) -> list[str]:
    """Controls a thumb must hit that are under 44 px tall: buttons (not text-like links), fields, folds,
    navigation links, links standing on their own, and the label around each checkbox or radio."""
    found: list[str] = await page.evaluate(SMALL_TARGETS)
    return found


async def console_sign_in(page: Any, world: ConsoleWorld, role: str) -> None:
    await page.goto("/app/login")
    credentials = world.credentials[role]
    await page.fill("#username", credentials["username"])
    await page.fill("#password", credentials["password"])
    await page.click("button[type=submit]")
    await page.wait_for_url(CONSOLE_HOME[role])


__all__ = [
    "DESKTOP",
    "PHONE",
    "ConsoleWorld",
    "NewPage",
    "console_sign_in",
    "console_world",
    "desk",
    "released_audit",
    "settings",
    "sideways",
    "small_targets",
    "streams_ended",
    "submitted_audit",
]
