"""An admin uploads a checklist with errors, sees each problem on its line, fixes it, previews it in the
three languages with the field app's renderer, and publishes it; it is then served by GET /checklists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.audit_factories import checklist_definition
from tests.browser.conftest import PHONE, shoot
from tests.browser.console_steps import ConsoleWorld, NewPage, console_world, desk, settings
from tests.browser.test_admin_screens import admin_sign_in

__all__ = ["console_world", "desk", "settings"]
KEY = "admin-upload"
LOCALES = Path(__file__).resolve().parents[2] / "web" / "src" / "locales"


def renderer_yes(language: str) -> str:
    """The renderer's own "yes" in a language (the preview shows it in the preview's language)."""
    messages = json.loads((LOCALES / language / "checklist.json").read_text(encoding="utf-8"))
    return str(messages["checklist"]["yes"])


def definition(*, broken: bool) -> str:
    """A YAML definition; broken: an unknown item type and a negative weight, each on its own line."""
    checklist: dict[str, Any] = checklist_definition(KEY)
    checklist["title"] = {"zh-CN": "网点服务检查", "en": "Branch service check", "es": "Control del servicio"}
    if broken:
        checklist["sections"][0]["items"][0]["type"] = "yes_or_no"
        checklist["sections"][1]["items"][0]["weight"] = -3
    return yaml.safe_dump(checklist, allow_unicode=True, sort_keys=False)


def line_of(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), start=1) if needle in line)


async def test_an_admin_fixes_an_uploaded_checklist_and_publishes_it(desk: NewPage,
                                                                      console_world: ConsoleWorld) -> None:
    page = await desk("en")
    await admin_sign_in(page, console_world.credentials)
    await page.goto("/app/admin/checklists")
    broken = definition(broken=True)
    await page.set_input_files("[data-test=definition-file]", files=[
        {"name": f"{KEY}.yaml", "mimeType": "application/yaml", "buffer": broken.encode()}])

    # Each problem sits under its own line of the file, and nothing can be published.
    await page.locator("[data-test=invalid]").wait_for()
    for needle in ("type: yes_or_no", "weight: -3"):
        line = page.locator(f"[data-test=listing] li[data-line='{line_of(broken, needle)}']")
        assert needle in await line.locator("code").first.inner_text()
        assert await line.locator("[data-test=definition-problem]").count() == 1
    assert await page.locator("[data-test=definition-problem]").count() == 2
    assert await page.locator("[data-test=publish]").is_disabled()
    await page.set_viewport_size(PHONE)
    await shoot(page, "admin-checklist-problems-en-phone")

    # Fixed in place: checked again, previewed in each language with the phone's renderer, then published.
    await page.fill("[data-test=definition-text]", definition(broken=False))
    assert await page.locator("[data-test=publish]").is_disabled()  # changed since the last check
    await page.click("[data-test=check]")
    await page.locator("[data-test=valid]").wait_for()
    for language, title in (("zh-CN", "网点服务检查"), ("es", "Control del servicio"), ("en", "Branch service check")):
        await page.locator(f"[data-test=preview] label:has([data-test=preview-{language}])").click()
        body = page.locator(f"[data-test=preview-body-{language}]")
        assert title in await body.locator("h3").first.inner_text()
        assert await body.locator("article.item").count() == 12
        yes = body.locator("[data-item=hall_clean] label:has([data-test=yes])")
        assert await yes.inner_text() == renderer_yes(language)
    await page.locator("[data-test=preview] label:has([data-test=preview-zh-CN])").click()
    await shoot(page, "admin-checklist-preview-en-phone")
    await page.click("[data-test=publish]")
    await page.locator("[data-test=published]").wait_for()
    await page.locator(f"[data-test=checklist-{KEY}]").wait_for()

    served = await console_world.api.json("GET", "/api/v1/checklists?lang=en", "inspector", expect=200)
    assert {c["key"]: c["version"] for c in served}[KEY] == 1
