"""POST /checklists/validate, /checklists/{key}/retire and /restore: checking without publishing, and
withdrawing a checklist from new work while audits pinned to it finish."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from server.clock import FakeClock
from server.context import Services
from server.errors import ValidationFailed
from server.services.checklists import ensure_not_retired
from tests.audit_factories import add_photo, ids_by, passing_answers, publish_checklist, start_body
from tests.conftest import Api, assert_problem
from tests.test_admin_users import event_of, trail_of

SHIPPED = Path(__file__).resolve().parents[1] / "checklists"
YAML = {"Content-Type": "application/yaml"}
VALIDATE = "/api/v1/checklists/validate"


async def test_validate_lists_every_problem_with_its_line_and_path_and_publishes_nothing(
        api: Api, services: Services) -> None:
    text = (SHIPPED / "branch-service.yaml").read_text(encoding="utf-8")
    broken = text.replace("severity: minor", "severity: trivial", 2).replace("type: yes_no", "type: maybe", 1)
    result = await api.json("POST", VALIDATE, "admin", expect=200, data=broken.encode(), headers=YAML)
    assert result["valid"] is False and result["preview"] is None
    assert len(result["errors"]) >= 3
    lines = broken.splitlines()
    for error in result["errors"]:
        assert error["loc"][0] == "body" and error["path"] and error["line"]
    severities = [e for e in result["errors"] if e["path"].endswith(".severity")]
    assert len(severities) == 2 and all("trivial" in lines[e["line"] - 1] for e in severities)
    typed = next(e for e in result["errors"] if e["path"].endswith(".type"))
    assert "maybe" in lines[typed["line"] - 1]
    assert await services.db.checklists.count_documents({}) == 0

    syntax = await api.json("POST", VALIDATE, "admin", expect=200, data=b"key: [unclosed\n", headers=YAML)
    assert syntax["valid"] is False and syntax["errors"][0]["line"] == 2


async def test_validate_previews_a_valid_definition_in_three_languages(api: Api, services: Services) -> None:
    text = (SHIPPED / "branch-service.yaml").read_text(encoding="utf-8")
    result = await api.json("POST", VALIDATE, "admin", expect=200, data=text.encode(), headers=YAML)
    assert result["valid"] is True and result["errors"] == [] and result["key"] == "branch-service"
    preview = result["preview"]
    assert set(preview) == {"zh-CN", "en", "es"}
    assert preview["en"]["title"] == "Branch service audit"
    assert preview["zh-CN"]["title"] == "网点服务质量检查"
    first = {lang: preview[lang]["sections"][0]["items"][0]["text"] for lang in preview}
    assert len(set(first.values())) == 3
    assert await services.db.checklists.count_documents({}) == 0
    r = await api.call("POST", VALIDATE, "compliance", data=text.encode(), headers=YAML)
    assert_problem(r, await r.json(content_type=None), 403)
    r = await api.call("POST", VALIDATE, "admin", data=text.encode(), headers={"Content-Type": "text/plain"})
    assert r.status == 415


async def test_retire_and_restore_with_events_and_trail(api: Api, services: Services) -> None:
    await publish_checklist(services.db)
    path = "/api/v1/checklists/test-visit"
    r = await api.call("POST", f"{path}/retire", "compliance", json={"reason": "x"})
    assert_problem(r, await r.json(content_type=None), 403)
    state = await api.json("POST", f"{path}/retire", "admin", expect=200, json={"reason": "replaced by v2 form"})
    assert state["retired"] is True and state["retired_reason"] == "replaced by v2 form"
    await event_of(services, "checklist.retired", "test-visit")
    await trail_of(services, "checklist.retire", "test-visit")
    listing = await api.json("GET", "/api/v1/checklists", "admin", expect=200)
    assert [c["retired"] for c in listing if c["key"] == "test-visit"] == [True]
    await api.json("POST", f"{path}/retire", "admin", expect=409, json={})
    body = await api.json("POST", "/api/v1/programs", "compliance", expect=422, json={
        "name": "P", "checklist_key": "test-visit", "starts_on": "2026-11-02", "ends_on": "2026-11-30",
        "region_ids": [(await ids_by(services.db, "regions", "code"))["EAST"]["_id"]]})
    assert body["errors"][0]["loc"] == ["body", "checklist_key"]
    with pytest.raises(ValidationFailed):
        await ensure_not_retired(services, "test-visit")

    state = await api.json("POST", f"{path}/restore", "admin", expect=200)
    assert state["retired"] is False
    await event_of(services, "checklist.restored", "test-visit")
    await trail_of(services, "checklist.restore", "test-visit")
    await ensure_not_retired(services, "test-visit")
    await api.json("POST", f"{path}/restore", "admin", expect=409)
    await api.json("POST", "/api/v1/checklists/no-such-key/retire", "admin", expect=404, json={})


async def test_retiring_a_checklist_leaves_audits_in_progress_submittable(
        api: Api, services: Services, clock: FakeClock) -> None:
    await publish_checklist(services.db)
    branch = (await ids_by(services.db, "branches", "code"))["SH-LJZ"]
    audit_id = str(uuid.uuid4())
    await api.json("PUT", f"/api/v1/audits/{audit_id}", "inspector", expect=201,
                   json=start_body(branch["_id"], clock.now()))
    await api.json("POST", "/api/v1/checklists/test-visit/retire", "admin", expect=200, json={"reason": "withdrawn"})
    # A phone retrying its start still gets its audit; a new audit on the retired checklist is refused.
    await api.json("PUT", f"/api/v1/audits/{audit_id}", "inspector", expect=200,
                   json=start_body(branch["_id"], clock.now()))
    r = await api.call("PUT", f"/api/v1/audits/{uuid.uuid4()}", "inspector",
                       json=start_body(branch["_id"], clock.now()))
    refused = await r.json(content_type=None)
    assert_problem(r, refused, 422)
    assert refused["errors"][0]["loc"] == ["body", "checklist_key"]
    await add_photo(services.db, audit_id, "lobby_photo", branch["_id"])
    await api.json("PATCH", f"/api/v1/audits/{audit_id}/answers", "inspector", expect=200,
                   json=passing_answers(clock.now()))
    submitted = await api.json("POST", f"/api/v1/audits/{audit_id}/submit", "inspector", expect=200)
    assert submitted["status"] == "submitted"


async def test_validate_gives_lines_for_a_json_definition_too(api: Api) -> None:
    definition = yaml.safe_load((SHIPPED / "branch-service.yaml").read_text(encoding="utf-8"))
    definition["sections"][1]["items"][0]["severity"] = "trivial"
    text = json.dumps(definition, indent=2, ensure_ascii=False)
    result = await api.json("POST", VALIDATE, "admin", expect=200, data=text.encode(),
                            headers={"Content-Type": "application/json"})
    [error] = result["errors"]
    assert error["path"] == "sections[1].items[0].severity"
    assert '"trivial"' in text.splitlines()[error["line"] - 1]
