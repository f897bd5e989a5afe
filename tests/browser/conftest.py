"""Browser tests: Debian's chromium driven by Python Playwright (async, in the pytest loop) against the real
server on the embedded database, serving the built web app. Screenshots go to var/screenshots/."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import os
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from server.app import create_app
from server.context import Services
from server.db import Database
from server.http.webapp import app_dir
from server.notify.stream import notifier_of
from server.settings import Settings
from tests.audit_factories import checklist_definition, create_program, item, publish_checklist, text
from tests.conftest import Api
from tests.image_factory import exif_bytes, noisy_scene, scene

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
# This machine has no network: Chromium's background connections would only fail noisily.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 360, "height": 780}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
KEY = "browser-visit"
# The demo's Shanghai Lujiazui branch (geofence 150 m); the inspector's home branch is elsewhere.
BRANCH_CODE = "SH-LJZ"
AT_THE_BRANCH = {"latitude": 31.2398, "longitude": 121.4999, "accuracy": 25}


class ShiftingClock:
    """The wall clock plus an offset a test moves (to expire every token at once)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@pytest.fixture
def clock() -> ShiftingClock:
    return ShiftingClock()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The harness's settings with a quick live stream: a heartbeat every half second lets the server notice a
    closed console page and end its notification stream before the test server stops (see streams_ended)."""
    return settings.model_copy(update={"sse_poll_s": 0.25, "sse_heartbeat_s": 0.5})


def browser_checklist() -> dict[str, Any]:
    """The test checklist (every item type) with a show_if chain three deep added to its service section."""
    definition = checklist_definition(KEY)
    service = definition["sections"][1]["items"]
    service.insert(2, item("manager_called", "yes_no", show_if={"item": "complaint_followup", "failed": True}))
    service.insert(3, item("manager_name", "text", show_if={"item": "manager_called", "equals": True}))
    definition["title"] = text("Browser visit")
    return definition


def phone_photo(seed: int, *, size_bytes: int = 0, taken: datetime | None = None) -> bytes:
    """A JPEG with a phone's EXIF (capture time, GPS, make); about `size_bytes` when asked for (noisier)."""
    exif = exif_bytes(taken=taken or datetime(2026, 11, 2, 9, 30), offset="+08:00", gps=(31.2397, 121.4998))
    if not size_bytes:
        picture = scene(800, 600, seed=seed)
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=85, exif=exif)
        return out.getvalue()
    side = (size_bytes / 0.64) ** 0.5  # a noisy JPEG at q90 takes about 0.64 bytes per pixel
    data = b""
    for _ in range(3):  # two corrections land within a few per cent of the size asked for
        picture = noisy_scene(int(side * 4 / 3), int(side * 3 / 4), seed=seed)
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=90, exif=exif)
        data = out.getvalue()
        if abs(len(data) - size_bytes) < size_bytes * 0.03:
            break
        side *= (size_bytes / len(data)) ** 0.5
    return data


def camera_photo(seed: int) -> bytes:
    """A 12-megapixel phone camera JPEG of about 2 MB, with the camera's EXIF."""
    exif = exif_bytes(taken=datetime(2026, 11, 2, 9, 30), offset="+08:00", gps=(31.2397, 121.4998))
    out = io.BytesIO()
    noisy_scene(4000, 3000, seed=seed, noise=10).save(out, "JPEG", quality=85, exif=exif)
    return out.getvalue()


@dataclass
class FieldWorld:
    """A running server with the demo organisation, a published checklist and one planned visit."""

    base: str
    api: Api
    services: Services
    clock: ShiftingClock
    assignment_id: str
    branch: dict[str, Any]
    credentials: dict[str, dict[str, str]]
    console: list[str] = field(default_factory=list)

    def login_of(self, role: str) -> dict[str, str]:
        return self.credentials[role]


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} missing: install Debian's chromium and fonts-noto-cjk to run the browser tests"
    if not (app_dir() / "index.html").is_file():
        return "web app not built: run make web"
    return None


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


async def streams_ended(services: Services, timeout_s: float = 15.0) -> None:
    """Wait until the server's notification streams (console pages) have noticed their pages closed and ended:
    a handler still in a database call when the test server stops is cancelled there and leaks its socket."""
    notifier = notifier_of(services)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while notifier._waiters and loop.time() < deadline:
        for user_id in list(notifier._waiters):
            notifier.wake(user_id)  # each stream writes its next heartbeat sooner and finds the page gone
        await asyncio.sleep(0.1)
    assert not notifier._waiters, "notification streams still open"


async def start_server(services: Services) -> TestServer:
    server = TestServer(create_app(services, start_jobs=False, prepare_data=False, close_client=False),
                        host="127.0.0.1")
    await server.start_server()
    return server


async def plan_visit(api: Api, db: Database, role: str = "inspector", *,
                     covert: bool = False) -> tuple[str, dict[str, Any]]:
    """One visit to the Lujiazui branch this week, assigned to `role`'s demo user."""
    branches = await api.json("GET", "/api/v1/branches?limit=200", "compliance", expect=200)
    branch = next(b for b in branches["items"] if b["code"] == BRANCH_CODE)
    today = datetime.now(UTC).date()
    program = await create_program(api, checklist_key=KEY, branch_ids=[branch["id"]], starts_on=today.isoformat(),
                                   ends_on=(today + timedelta(days=6)).isoformat(), covert=covert,
                                   name=f"Browser {role}")
    resp = await api.call("POST", f"/api/v1/programs/{program['id']}/assignments", "compliance")
    assert resp.status in (200, 201), await resp.text()
    planned = await api.json("GET", f"/api/v1/assignments?program_id={program['id']}", "compliance", expect=200)
    visit = planned["items"][0]
    # The planner may give the visit to any inspector of the region; the test signs in as the first one.
    user = await db.users.find_one({"username": api.credentials[role]["username"]})
    assert user is not None
    now = datetime.now(UTC)
    await db.assignments.update_one({"_id": visit["id"]}, {"$set": {
        "assignee_id": user["_id"], "window_start": now - timedelta(hours=1), "window_end": now + timedelta(days=2)}})
    return visit["id"], branch


@pytest.fixture
async def field_world(services: Services, demo: dict[str, dict[str, str]], clock: ShiftingClock
                      ) -> AsyncIterator[FieldWorld]:
    await publish_checklist(services.db, browser_checklist(), now=datetime.now(UTC) - timedelta(days=1))
    server = await start_server(services)
    async with ClientSession() as session:
        api = Api(session, str(server.make_url("")).rstrip("/"), demo)
        assignment_id, branch = await plan_visit(api, services.db)
        yield FieldWorld(api.base, api, services, clock, assignment_id, branch, demo)
    await server.close()
    # Chromium may still hold keep-alive connections to the stopped server: collect their sockets here,
    # so a later test does not fail on this one's leftovers.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


NewPage = Callable[..., Awaitable[Any]]


@pytest.fixture
async def phone(browser: Any, field_world: FieldWorld) -> AsyncIterator[NewPage]:
    """Open pages in a phone-sized context (geolocation at the branch); fails the test on CSP violations
    and uncaught page errors."""
    contexts: list[Any] = []
    problems: list[str] = []

    async def open_page(language: str = "en", *, context: Any = None, base: str | None = None) -> Any:
        if context is None:
            context = await browser.new_context(
                viewport=PHONE, device_scale_factor=1, locale=language, base_url=base or field_world.base,
                geolocation=AT_THE_BRANCH, permissions=["geolocation"], service_workers="allow",
            )
            contexts.append(context)
        page = await context.new_page()
        page.on("console", lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None)
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        return page

    yield open_page
    for context in contexts:
        await context.close()
    await streams_ended(field_world.services)
    assert not problems, problems


async def sign_in(page: Any, world: FieldWorld, role: str = "inspector", *, path: str = "/app/") -> None:
    await page.goto(path)
    credentials = world.login_of(role)
    await page.fill("#username", credentials["username"])
    await page.fill("#password", credentials["password"])
    await page.click("button[type=submit]")
    await page.wait_for_url("**/app/visits")


async def shoot(page: Any, name: str) -> Path:
    """A full-page screenshot kept for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def service_worker_ready(page: Any) -> None:
    """The app shell is precached and the worker controls the page (so a reload works offline)."""
    await page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    if not await page.evaluate("Boolean(navigator.serviceWorker.controller)"):
        await page.reload()
        await page.wait_for_function("() => Boolean(navigator.serviceWorker.controller)")


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
