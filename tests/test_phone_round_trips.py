"""Guard: the database commands each of a phone's four requests sends (PUT start, PATCH every answer, POST a
photo, POST submit), counted on the application's own client. Each request reads its audit once and
decides on the document read; a write whose outcome is known is not read back; a photo's holders of the same
bytes are read once. A change that adds a round trip to the path every audit takes fails here: raise the
figure only with the reason, in the domain's words, beside it."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from aiohttp import ClientSession, FormData
from pymongo import monitoring

from bench.audits import passing_value
from server.clock import FakeClock
from server.context import Services
from server.domain.answers import CLOCK_AHEAD
from server.jobs.dispatcher import drain
from tests import image_factory as f
from tests.audit_factories import ids_by, publish_checklist, start_body
from tests.conftest import Api
from tests.test_query_guard import listened_app

# Per request, once the caller's login is known to this process. The writes of a transaction (the audit,
# its events, their pending markers, the trail entry and its marker, the commit) are most of each figure.
EXPECTED = {
    # the branch, the checklist's pointer; insert audit, event, outbox marker, trail, trail marker, commit
    "start": 8,
    # the audit; its conditional update, trail, trail marker, commit; the photos for the progress returned
    "answers": 6,
    # the audit, its branch, the photos of the same bytes, the near-duplicate candidates, the chunks;
    # the audit's conditional update, files document, photo, event, outbox marker, trail, trail marker, commit
    "photo": 13,
    # the audit, its photos; its conditional update, event, outbox marker, trail, trail marker, commit
    "submit": 8,
}
# What each request reads of its audit and of the photo records.
EXPECTED_READS = {
    "start": {},
    "answers": {"audits": 1, "photos": 1},
    "photo": {"audits": 1, "photos": 2},
    "submit": {"audits": 1, "photos": 1},
}
# Not the request's: the session's housekeeping, and the change streams of this process (revocations).
IGNORED = {"endSessions", "hello", "isMaster", "ping"}


class Commands(monitoring.CommandListener):
    """The commands sent on the application's client while recording, as (name, collection, in a transaction)."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.recording = False
        self.sent: list[tuple[str, str]] = []
        self.streams: set[int] = set()  # cursor ids of change streams: their getMores wait, they serve no request
        self._opening: set[int] = set()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command
        if event.command_name == "aggregate" and any("$changeStream" in s for s in command.get("pipeline") or []):
            self._opening.add(event.request_id)
            return
        if event.command_name == "getMore" and command.get("getMore") in self.streams:
            return
        if self.recording and event.command_name not in IGNORED:
            collection = command.get(event.command_name)
            self.sent.append((event.command_name, collection if isinstance(collection, str) else ""))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.request_id in self._opening:
            self._opening.discard(event.request_id)
            self.streams.add(int(event.reply.get("cursor", {}).get("id", 0)))

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._opening.discard(event.request_id)


async def test_each_phone_request_sends_no_more_database_commands_than_it_needs(
        services: Services, demo: dict[str, dict[str, str]], mongo_uri: str, clock: FakeClock) -> None:
    commands = Commands(services.settings.database_name)
    per_request: dict[str, list[tuple[str, str]]] = {}
    async with listened_app(services, mongo_uri, commands) as served, ClientSession() as session:
        base, checklist, branch = served.base, served.checklist, served.branch
        async with session.post(base + "/api/v1/auth/login", json=demo["inspector"]) as resp:
            headers = {"Authorization": f"Bearer {(await resp.json())['access_token']}"}

        async def call(request: str, method: str, path: str, expect: int, **kw: Any) -> None:
            commands.sent.clear()
            commands.recording = True
            async with session.request(method, base + path, headers=headers, **kw) as resp:
                body = await resp.text()
            commands.recording = False
            assert resp.status == expect, f"{method} {path}: {resp.status} {body}"
            per_request[request] = list(commands.sent)

        for seed in range(2):  # the first audit warms what a process keeps (the login, the checklist)
            audit_id, now = str(uuid.uuid4()), clock.now().isoformat()
            start = {"branch_id": branch["_id"], "checklist_key": checklist.key, "started_at": now,
                     "location": branch["location"]}
            await call("start", "PUT", f"/api/v1/audits/{audit_id}", 201, json=start)
            answers = [{"item_id": i.id, "value": passing_value(i), "answered_at": now}
                       for i in checklist.items() if i.type != "photo"]
            await call("answers", "PATCH", f"/api/v1/audits/{audit_id}/answers", 200, json=answers)
            form = FormData()
            form.add_field("item_id", next(i.id for i in checklist.items() if i.type == "photo"))
            photo = f.phone_jpeg(taken=clock.now().replace(tzinfo=None), size=(800, 600), seed=seed)
            form.add_field("file", photo, filename="p.jpg", content_type="image/jpeg")
            await call("photo", "POST", f"/api/v1/audits/{audit_id}/photos", 201, data=form)
            await call("submit", "POST", f"/api/v1/audits/{audit_id}/submit", 200)
            await drain(served.services)
    counts = {request: len(sent) for request, sent in per_request.items()}
    assert counts == EXPECTED, per_request
    reads = {request: dict(Counter(c for name, c in sent if name in ("find", "aggregate", "count")))
             for request, sent in per_request.items()}
    for request, expected in EXPECTED_READS.items():
        assert {c: n for c, n in reads[request].items() if c in ("audits", "photos")} == expected, per_request


def test_the_counter_ignores_change_streams_and_housekeeping() -> None:
    commands = Commands("db")
    commands.recording = True
    stream = monitoring.CommandStartedEvent(
        {"aggregate": "revocations", "pipeline": [{"$changeStream": {}}]}, "db", 1, ("127.0.0.1", 1), None)
    commands.started(stream)
    commands.succeeded(monitoring.CommandSucceededEvent(
        timedelta(0), {"cursor": {"id": 77, "firstBatch": []}}, "aggregate", 1, ("127.0.0.1", 1), None))
    commands.started(monitoring.CommandStartedEvent(
        {"getMore": 77, "collection": "revocations"}, "db", 2, ("127.0.0.1", 1), None))
    commands.started(monitoring.CommandStartedEvent({"endSessions": []}, "db", 3, ("127.0.0.1", 1), None))
    commands.started(monitoring.CommandStartedEvent({"find": "audits", "filter": {}}, "db", 4, ("127.0.0.1", 1), None))
    assert commands.sent == [("find", "audits")]


async def test_a_phone_clock_ahead_raises_its_flag_once_in_the_answers_update(
        api: Api, services: Services, clock: FakeClock) -> None:
    await publish_checklist(services.db)
    branch = (await ids_by(services.db, "branches", "code"))["SH-LJZ"]
    audit_id = str(uuid.uuid4())
    start = start_body(branch["_id"], clock.now(), location={"lat": 31.2397, "lon": 121.4998})
    await api.json("PUT", f"/api/v1/audits/{audit_id}", "inspector", expect=201, json=start)
    await services.db.audits.update_one({"_id": audit_id}, {"$set": {"flags": ["earlier_flag"]}})
    ahead = (clock.now() + timedelta(minutes=30)).isoformat()
    for item_id, value in (("greeting_words", "standard"), ("comments", "fine")):
        body = [{"item_id": item_id, "value": value, "answered_at": ahead}]
        answered = await api.json("PATCH", f"/api/v1/audits/{audit_id}/answers", "inspector", expect=200, json=body)
        assert answered["applied"] == 1, answered
    stored = await services.db.audits.find_one({"_id": audit_id})
    assert stored is not None
    assert stored["flags"] == ["earlier_flag", CLOCK_AHEAD]  # kept in order, raised once
    assert stored["answers"]["comments"]["answered_at"] == clock.now()  # clamped to when it was received
    assert stored["answers_rev"] == 2
