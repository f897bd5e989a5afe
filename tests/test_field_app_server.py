"""What the server adds for the field app and the console: an offline start on a superseded checklist
version, GPS accuracy at check-in, the phone's own capture report on photos, the policy for phones' wrong
clocks, and findings in the reader's language with their appeal deadline."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import FormData

from server.clock import FakeClock
from server.context import Services
from server.domain.answers import CLOCK_AHEAD, CLOCK_BEHIND, CLOCK_TOLERANCE, trusted_answered_at
from tests import image_factory as images
from tests.audit_factories import (
    add_photo,
    checklist_definition,
    ids_by,
    passing_answers,
    publish_checklist,
    start_body,
)
from tests.conftest import Api, assert_problem

LUJIAZUI = {"lat": 31.2397, "lon": 121.4998}


async def _start(api: Api, services: Services, clock: FakeClock, **body: Any) -> tuple[str, dict[str, Any]]:
    branches = await ids_by(services.db, "branches", "code")
    audit_id = str(uuid.uuid4())
    start = {**start_body(branches["SH-LJZ"]["_id"], clock.now(), location=LUJIAZUI), **body}
    audit = await api.json("PUT", f"/api/v1/audits/{audit_id}", "inspector", expect=201, json=start)
    return audit_id, audit


# --- checklist version and check-in accuracy ------------------------------------------------------------


async def test_an_offline_start_keeps_the_superseded_version_it_was_answered_on(
    api: Api, services: Services, clock: FakeClock
) -> None:
    await publish_checklist(services.db)
    changed = checklist_definition()
    changed["title"]["en"] = "Test visit, second edition"
    assert await publish_checklist(services.db, changed) == 2
    _, current = await _start(api, services, clock)
    assert current["checklist_version"] == 2
    _, offline = await _start(api, services, clock, checklist_version=1)
    assert offline["checklist_version"] == 1
    branches = await ids_by(services.db, "branches", "code")
    unknown = {**start_body(branches["SH-LJZ"]["_id"], clock.now()), "checklist_version": 7}
    resp = await api.call("PUT", f"/api/v1/audits/{uuid.uuid4()}", "inspector", json=unknown)
    body = await resp.json()
    assert_problem(resp, body, 422)
    assert body["errors"][0]["loc"] == ["body", "checklist_version"]


async def test_check_in_accuracy_is_stored_and_shown_to_reviewers_only(
    api: Api, services: Services, clock: FakeClock
) -> None:
    await publish_checklist(services.db)
    audit_id, audit = await _start(api, services, clock, location={**LUJIAZUI, "accuracy_m": 35.5})
    assert audit["checkin"]["accuracy_m"] == 35.5
    seen = await api.json("GET", f"/api/v1/audits/{audit_id}", "compliance", expect=200)
    assert seen["checkin"]["accuracy_m"] == 35.5 and seen["checkin"]["location"]["accuracy_m"] == 35.5
    await services.db.audits.update_one({"_id": audit_id}, {"$set": {"status": "released"}})
    branch_view = await api.json("GET", f"/api/v1/audits/{audit_id}", "branch_head", expect=200)
    assert "checkin" not in branch_view


# --- phones' clocks -------------------------------------------------------------------------------------


def test_times_within_the_tolerance_are_trusted_and_others_clamped() -> None:
    received = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    started = received - timedelta(hours=1)
    honest = received + CLOCK_TOLERANCE - timedelta(seconds=1)
    assert trusted_answered_at(honest, received_at=received, started_at=started) == (honest, None)
    ahead = received + timedelta(days=365)
    assert trusted_answered_at(ahead, received_at=received, started_at=started) == (received, CLOCK_AHEAD)
    behind = started - timedelta(days=2)
    assert trusted_answered_at(behind, received_at=received, started_at=started) == (started, CLOCK_BEHIND)
    slightly_early = started - timedelta(seconds=30)
    assert trusted_answered_at(slightly_early, received_at=received, started_at=started) == (slightly_early, None)


async def test_a_phone_clock_from_the_future_cannot_freeze_an_answer(
    api: Api, services: Services, clock: FakeClock
) -> None:
    await publish_checklist(services.db)
    audit_id, _ = await _start(api, services, clock)
    clock.advance(timedelta(minutes=5))
    far_future = (clock.now() + timedelta(days=400)).isoformat()
    await api.json("PATCH", f"/api/v1/audits/{audit_id}/answers", "inspector", expect=200,
                   json=[{"item_id": "hall_clean", "value": False, "answered_at": far_future}])
    stored = await services.db.audits.find_one({"_id": audit_id})
    assert stored is not None
    answer = stored["answers"]["hall_clean"]
    assert answer["answered_at"] == clock.now().replace(microsecond=clock.now().microsecond // 1000 * 1000)
    assert answer["reported_answered_at"].year == clock.now().year + 1
    assert CLOCK_AHEAD in stored["flags"]
    # An honest correction a minute later wins: the future time did not freeze the answer.
    clock.advance(timedelta(minutes=1))
    result = await api.json("PATCH", f"/api/v1/audits/{audit_id}/answers", "inspector", expect=200,
                            json=[{"item_id": "hall_clean", "value": True, "answered_at": clock.now().isoformat()}])
    assert result["applied"] == 1
    stored = await services.db.audits.find_one({"_id": audit_id})
    assert stored is not None and stored["answers"]["hall_clean"]["value"] is True


async def test_a_time_before_the_audit_began_cannot_rewrite_its_history(
    api: Api, services: Services, clock: FakeClock
) -> None:
    await publish_checklist(services.db)
    audit_id, _ = await _start(api, services, clock)
    clock.advance(timedelta(minutes=10))
    await api.json("PATCH", f"/api/v1/audits/{audit_id}/answers", "inspector", expect=200,
                   json=[{"item_id": "hall_clean", "value": True, "answered_at": clock.now().isoformat()}])
    last_year = (clock.now() - timedelta(days=365)).isoformat()
    result = await api.json("PATCH", f"/api/v1/audits/{audit_id}/answers", "inspector", expect=200,
                            json=[{"item_id": "signage", "value": 2, "answered_at": last_year},
                                  {"item_id": "hall_clean", "value": False, "answered_at": last_year}])
    assert result["applied"] == 1  # signage was unanswered; hall_clean keeps its later answer
    stored = await services.db.audits.find_one({"_id": audit_id})
    assert stored is not None
    assert stored["answers"]["hall_clean"]["value"] is True
    assert stored["answers"]["signage"]["answered_at"] == stored["started_at"]
    assert CLOCK_BEHIND in stored["flags"]


async def test_a_start_from_the_future_starts_when_the_server_heard_of_it(
    api: Api, services: Services, clock: FakeClock
) -> None:
    await publish_checklist(services.db)
    ahead = clock.now() + timedelta(days=3)
    audit_id, audit = await _start(api, services, clock, started_at=ahead.isoformat())
    assert "started_in_future" in audit["flags"]
    stored = await services.db.audits.find_one({"_id": audit_id})
    assert stored is not None and stored["started_at"] <= clock.now() + timedelta(seconds=1)
    assert stored["checkin"]["reported_at"].date() == ahead.date()
    # Answers from the phone's (wrong) clock still count as given now, not as "before the start".
    await api.json("PATCH", f"/api/v1/audits/{audit_id}/answers", "inspector", expect=200,
                   json=passing_answers(ahead))
    await add_photo(services.db, audit_id, "lobby_photo", stored["branch_id"])
    await api.json("POST", f"/api/v1/audits/{audit_id}/submit", "inspector", expect=200)


# --- the phone's capture report on photos -----------------------------------------------------------------


async def test_photos_keep_the_phones_capture_report_apart_from_exif(api: Api, services: Services) -> None:
    started = datetime(2026, 11, 2, 0, 40, tzinfo=UTC)
    audit = await images.seed_audit(services.db, started_at=started)
    form = FormData()
    form.add_field("item_id", "entrance_clean")
    form.add_field("client_captured_at", "2026-11-02T08:55:00+08:00")
    form.add_field("client_location", json.dumps({"lat": 31.24, "lon": 121.5, "accuracy_m": 12}))
    form.add_field("file", images.phone_jpeg(taken=datetime(2026, 11, 2, 8, 55), seed=70), filename="a.jpg")
    photo = await api.json("POST", f"/api/v1/audits/{audit['_id']}/photos", "inspector", expect=201, data=form)
    assert photo["client_captured_at"] == "2026-11-02T00:55:00Z"
    assert photo["client_location"] == {"lat": 31.24, "lon": 121.5, "accuracy_m": 12.0}
    assert photo["captured_at"] != photo["client_captured_at"] or photo["captured_at_source"]  # EXIF is its own
    stored = await services.db.photos.find_one({"_id": photo["id"]})
    assert stored is not None and stored["device_report"]["client_location"]["accuracy_m"] == 12
    await services.db.audits.update_one({"_id": audit["_id"]}, {"$set": {"status": "released"}})
    for reviewer in ("compliance",):
        seen = await api.json("GET", f"/api/v1/photos/{photo['id']}/meta", reviewer, expect=200)
        assert seen["client_location"]["accuracy_m"] == 12.0
    branch = await api.json("GET", f"/api/v1/photos/{photo['id']}/meta", "branch_head", expect=200)
    assert branch["client_captured_at"] is None and branch["client_location"] is None


async def test_a_bad_capture_report_is_refused_naming_the_field(api: Api, services: Services) -> None:
    audit = await images.seed_audit(services.db, started_at=datetime(2026, 11, 2, 0, 40, tzinfo=UTC))
    form = FormData()
    form.add_field("item_id", "entrance_clean")
    form.add_field("client_location", json.dumps({"lat": 123, "lon": 121.5}))
    form.add_field("file", images.phone_jpeg(taken=datetime(2026, 11, 2, 8, 55), seed=71), filename="a.jpg")
    resp = await api.call("POST", f"/api/v1/audits/{audit['_id']}/photos", "inspector", data=form)
    body = await resp.json()
    assert_problem(resp, body, 422)
    assert body["errors"][0]["loc"][:3] == ["body", "client_location", "lat"]
    assert await services.db.photos.count_documents({}) == 0


async def test_tus_metadata_carries_the_capture_report(api: Api, services: Services) -> None:
    audit = await images.seed_audit(services.db, started_at=datetime(2026, 11, 2, 0, 40, tzinfo=UTC))
    data = images.phone_jpeg(taken=datetime(2026, 11, 2, 8, 55), seed=72)
    metadata = {
        "audit_id": audit["_id"],
        "item_id": "entrance_clean",
        "client_captured_at": "2026-11-02T00:56:00Z",
        "client_location": json.dumps({"lat": 31.2397, "lon": 121.4998, "accuracy_m": 8}),
    }
    header = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in metadata.items())
    tus = {"Tus-Resumable": "1.0.0"}
    created = await api.call("POST", "/api/v1/uploads", "inspector",
                             headers={**tus, "Upload-Length": str(len(data)), "Upload-Metadata": header})
    assert created.status == 201, await created.text()
    location = created.headers["Location"]
    sent = await api.call("PATCH", location, "inspector", data=data, headers={
        **tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
    assert sent.status == 204, await sent.text()
    photo = await api.json("GET", f"/api/v1/photos/{sent.headers['Photo-Id']}/meta", "inspector", expect=200)
    assert photo["client_captured_at"] == "2026-11-02T00:56:00Z" and photo["client_location"]["accuracy_m"] == 8.0


# --- findings for the console -----------------------------------------------------------------------------


async def test_findings_carry_their_item_text_in_the_readers_language_and_the_appeal_deadline(
    api: Api, services: Services, clock: FakeClock
) -> None:
    await publish_checklist(services.db)
    audit_id, audit = await _start(api, services, clock)
    await add_photo(services.db, audit_id, "lobby_photo", audit["branch_id"])
    await add_photo(services.db, audit_id, "hall_clean", audit["branch_id"])
    await api.json("PATCH", f"/api/v1/audits/{audit_id}/answers", "inspector", expect=200,
                   json=passing_answers(clock.now(), hall_clean=False))
    await api.json("POST", f"/api/v1/audits/{audit_id}/submit", "inspector", expect=200)
    await api.json("POST", f"/api/v1/audits/{audit_id}/release", "compliance", expect=200)
    window = services.settings.appeal_window_days
    chinese = await api.json("GET", f"/api/v1/findings?audit_id={audit_id}", "branch_head", expect=200)
    finding = chinese["items"][0]
    assert finding["item_text"] == "hall clean (zh)"  # the branch head reads zh-CN
    released = datetime.fromisoformat(finding["released_at"])
    assert datetime.fromisoformat(finding["appeal_until"]) == released + timedelta(days=window)
    english = await api.json("GET", f"/api/v1/findings?audit_id={audit_id}&lang=en", "branch_head", expect=200)
    assert english["items"][0]["item_text"] == "hall clean"
    spanish = await api.call("GET", f"/api/v1/findings?audit_id={audit_id}", "compliance",
                             headers={"Accept-Language": "es-ES,es;q=0.9"})
    assert (await spanish.json())["items"][0]["item_text"] == "hall clean (es)"
