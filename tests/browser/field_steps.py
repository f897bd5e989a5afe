"""Steps an inspector takes in the field app, shared by the browser tests and the benchmark."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.browser.conftest import FieldWorld

JPEG = "image/jpeg"


def answer(page: Any, item_id: str, test_id: str) -> Any:
    """Click the label around an item's choice (radio or checkbox inputs are styled as buttons)."""
    return page.locator(f"[data-item={item_id}] label:has([data-test={test_id}])").click()


async def add_photos(page: Any, item_id: str, photos: list[tuple[str, bytes]]) -> None:
    before = await page.locator(f"[data-item={item_id}] [data-test=photo]").count()
    await page.set_input_files(f"[data-test=camera-{item_id}]",
                               files=[{"name": name, "mimeType": JPEG, "buffer": data} for name, data in photos])
    await page.locator(f"[data-item={item_id}] [data-test=photo]").nth(before + len(photos) - 1).wait_for()


async def open_visit_to_checkin(page: Any) -> None:
    """From my visits: the brief, keep for offline, check in at the branch (the start button is next)."""
    await page.locator("[data-test=visit] a").first.click()
    await page.wait_for_url("**/app/visits/*")
    await page.click("[data-test=keep-offline]")
    await page.locator("[data-test=kept]").wait_for()
    await page.click("[data-test=go-checkin]")
    await page.locator("[data-test=distance]").wait_for()


async def start_checked_in(page: Any) -> str:
    """Start the audit from the check-in screen. Returns the audit id."""
    await page.click("[data-test=start]")
    await page.wait_for_url("**/app/audits/*")
    return str(page.url.rstrip("/").split("/")[-1])


async def open_visit_and_start(page: Any) -> str:
    """From my visits: the brief, keep for offline, check in at the branch, start. Returns the audit id."""
    await open_visit_to_checkin(page)
    return await start_checked_in(page)


# The phone's outbox in IndexedDB (one database per signed-in user): how many actions of a kind wait for an
# audit. A screen shows an answer before its IndexedDB write ends, and leaving the page (goto, reload)
# aborts a write still running; a test that leaves right after answering waits for this count first.
QUEUED_ACTIONS = """async ([auditId, kind]) => {
  const names = (await indexedDB.databases()).map((d) => d.name).filter((n) => n.startsWith("branch-audit:user:"));
  let count = 0;
  for (const name of names) {
    const db = await new Promise((resolve, reject) => {
      const open = indexedDB.open(name);
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
    const all = await new Promise((resolve, reject) => {
      const read = db.transaction("outbox").objectStore("outbox").getAll();
      read.onsuccess = () => resolve(read.result);
      read.onerror = () => reject(read.error);
    });
    db.close();
    count += all.filter((a) => a.audit_id === auditId && a.kind === kind).length;
  }
  return count;
}"""


async def queued_actions(page: Any, audit_id: str, kind: str) -> int:
    return int(await page.evaluate(QUEUED_ACTIONS, [audit_id, kind]))


async def wait_until_queued(page: Any, audit_id: str, kind: str, count: int = 1, timeout_s: float = 15.0) -> None:
    """Wait until at least `count` actions of `kind` for the audit are stored in the phone's outbox.
    Polled from here: page.wait_for_function takes a promise for a truthy answer instead of awaiting it."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (found := await queued_actions(page, audit_id, kind)) < count:
        assert asyncio.get_running_loop().time() < deadline, f"{found} {kind} actions queued, waited for {count}"
        await asyncio.sleep(0.1)


async def answer_environment(page: Any, photos: list[tuple[str, bytes]]) -> None:
    """Section one: the hall fails (photo prompt, evidence), signage 5, the ATM works, a lobby photo."""
    await answer(page, "hall_clean", "no")
    await page.locator("[data-item=hall_clean] [data-test=photo-prompt]").wait_for()
    await add_photos(page, "hall_clean", photos[:1])
    await answer(page, "signage", "rating-5")
    await answer(page, "atm_working", "yes")
    await add_photos(page, "lobby_photo", photos[1:2])


async def answer_service(page: Any, photos: list[tuple[str, bytes]]) -> None:
    """Section two, with the show_if chain: not greeted -> no follow-up -> manager called -> their name."""
    await page.select_option("#jump", index=1)
    await answer(page, "greeted", "no")
    await answer(page, "complaint_followup", "no")
    await answer(page, "manager_called", "yes")
    await page.locator("[data-item=manager_name] textarea[data-test=text]").fill("Ms Wang, lobby manager")
    await page.locator("[data-item=manager_name] textarea[data-test=text]").blur()
    await page.locator("[data-item=wait_minutes] [data-test=number]").fill("8")
    await page.locator("[data-item=wait_minutes] [data-test=number]").blur()
    await page.locator("[data-item=time_to_greet] [data-test=timer-typed]").fill("12")
    await page.locator("[data-item=time_to_greet] [data-test=timer-typed]").blur()
    await answer(page, "greeting_words", "option-standard")
    await answer(page, "farewell", "option-smile")
    await answer(page, "farewell", "option-words")
    await answer(page, "badge_worn", "yes")
    if photos:
        await add_photos(page, "badge_worn", photos)


EXPECTED_ANSWERS = {
    "hall_clean": False,
    "signage": 5,
    "atm_working": True,
    "greeted": False,
    "complaint_followup": False,
    "manager_called": True,
    "manager_name": "Ms Wang, lobby manager",
    "wait_minutes": 8,
    "time_to_greet": 12,
    "greeting_words": "standard",
    "farewell": ["smile", "words"],
    "badge_worn": True,
}


async def submit(page: Any) -> None:
    await page.click("[data-test=to-review]")
    await page.locator("[data-test=ready]").wait_for()
    await page.click("[data-test=submit]")
    await page.wait_for_url("**/result")


async def server_audit(world: FieldWorld, audit_id: str) -> dict[str, Any]:
    audit: dict[str, Any] = await world.api.json("GET", f"/api/v1/audits/{audit_id}", "compliance", expect=200)
    return audit


STORED_SETTING = """async (key) => {
  const db = await new Promise((resolve, reject) => {
    const open = indexedDB.open("branch-audit");
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
  try {
    return await new Promise((resolve, reject) => {
      const read = db.transaction("settings").objectStore("settings").get(key);
      read.onsuccess = () => resolve(read.result ?? null);
      read.onerror = () => reject(read.error);
    });
  } finally {
    db.close();
  }
}"""


async def wait_until_setting(page: Any, key: str, value: Any, timeout_s: float = 15.0) -> None:
    """Wait until the app has stored a setting (the screen changes first; leaving sooner aborts the write)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (found := await page.evaluate(STORED_SETTING, key)) != value:
        assert asyncio.get_running_loop().time() < deadline, f"setting {key} is {found!r}, waited for {value!r}"
        await asyncio.sleep(0.1)
