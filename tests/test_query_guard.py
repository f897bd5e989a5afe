"""Guard: no query on a phone's path reads more than it returns.

A phone's whole audit (PUT start, PATCH every answer, POST a photo, POST submit) plus all the background
work it causes (sequencing, every event handler, thumbnails) runs against a database that already holds
other audits, photos and events. Every command the application sends is recorded (PyMongo command
monitoring) and each query among them is explained. The test fails when one on a collection that grows
with use has an empty filter, scans the collection, or examines far more documents than it returns: the
cost of such a query grows with everything ever stored (the driver's GridFS upload ran an empty-filter
find_one on the photo chunks before each thumbnail, and took seconds once a bank's photos piled up). It
holds on both embedded servers; secantusd-py's planner scans the collection for any filter of more than
one field not covered by one index, so the phone's path filters by one indexed field and checks the rest
in code or inside the update.

Every list, history and export read (every GET, by every role that may call it) must also read only the
fields it returns: a query that may return several documents of a growing collection names its fields
(a projection, or a pipeline that shapes or groups its rows). Listing 200 audits used to spend 73% of its
time decoding whole audits, answers included, for rows that show a summary."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from aiohttp import ClientSession, FormData
from aiohttp.test_utils import TestServer
from pymongo import AsyncMongoClient, monitoring

from bench.audits import passing_value
from schemas.checklist import Checklist
from server.app import create_app
from server.checklists.publishing import publish_shipped
from server.clock import FakeClock
from server.context import Services
from server.http.routes import all_routers
from server.jobs.dispatcher import drain
from server.storage.checklists import get_version
from tests import image_factory as f
from tests.conftest import Api

# Collections whose size is bounded whatever the bank does (pending markers are drained, one lease per job,
# one cursor per handler, the organisation and the checklists): a scan of these is fine.
BOUNDED = {
    "outbox_pending", "trail_pending", "leases", "sequence_state", "handler_cursors", "trail_head", "meta",
    "checklists", "checklist_versions", "regions", "webhook_subscriptions",
}
QUERIES = {"find", "aggregate", "count", "distinct", "update", "delete", "findAndModify"}
# A query may examine a few more documents than it returns (an index on part of its filter); beyond
# this many per document returned, it reads what it then throws away.
MAX_EXAMINED_PER_RETURNED = 4
EXAMINED_SLACK = 8
PRIOR_AUDITS = 3
CLONED_AUDITS = 60


class Recorder(monitoring.CommandListener):
    """Every query command the application sends, as sent."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.commands: list[dict[str, Any]] = []
        self.recording = False

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.recording and event.database_name == self.database and event.command_name in QUERIES:
            self.commands.append(copy.deepcopy(dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def as_finds(command: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The find (collection, explainable find command) that reads what this command reads: explain of an
    update or delete is not implemented alike by every server, a find with the same filter is."""
    name = next(iter(command))
    collection = command[name]
    if name == "find":
        keep: dict[str, Any] = {k: command[k] for k in ("filter", "sort", "limit", "hint") if k in command}
        return [(collection, {"find": collection, **keep})]
    if name in ("count", "distinct"):
        return [(collection, {"find": collection, "filter": command.get("query") or {}})]
    if name == "findAndModify":
        find = {"find": collection, "filter": command.get("query") or {}, "limit": 1}
        if command.get("sort"):
            find["sort"] = command["sort"]
        return [(collection, find)]
    if name in ("update", "delete"):
        statements = command.get("updates" if name == "update" else "deletes") or []
        return [(collection, {"find": collection, "filter": s.get("q") or {}}) for s in statements]
    pipeline = command.get("pipeline") or []
    if pipeline and "$changeStream" in pipeline[0]:
        return []  # a change stream follows the oplog, not the collection
    first = pipeline[0] if pipeline else {}
    find = {"find": collection, "filter": first.get("$match", {})}
    if len(pipeline) > 1 and "$sort" in pipeline[1]:
        find["sort"] = pipeline[1]["$sort"]
    return [(collection, find)]


def _stages(plan: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(plan, dict):
        if isinstance(plan.get("stage"), str):
            found.add(plan["stage"])
        for value in plan.values():
            found |= _stages(value)
    elif isinstance(plan, list):
        for value in plan:
            found |= _stages(value)
    return found


async def explain(db: Any, find: dict[str, Any]) -> dict[str, Any]:
    result = await db.command({"explain": find, "verbosity": "executionStats"})
    stats = result.get("executionStats") or {}
    return {
        "stages": _stages(result.get("queryPlanner", {}).get("winningPlan")),
        "examined": int(stats.get("totalDocsExamined") or 0),
        "returned": int(stats.get("nReturned") or 0),
    }


def verdict(collection: str, find: dict[str, Any], found: dict[str, Any], command: str = "find") -> str | None:
    """Why this query reads more than it returns, or None."""
    if collection in BOUNDED:
        return None
    if command == "findAndModify":
        # Measured: by _id on 6,000 audits, 11-17 ms on secantusd-rs and 60 ms on secantusd-py, against
        # under a millisecond for 10 (a find then an update_one by _id stays flat on both).
        return "findAndModify (both embedded servers take longer for it the more documents are stored)"
    if not find.get("filter"):
        return "empty filter"
    if "COLLSCAN" in found["stages"]:
        return "collection scan"
    if found["examined"] > MAX_EXAMINED_PER_RETURNED * max(found["returned"], 1) + EXAMINED_SLACK:
        return f"examined {found['examined']} documents for {found['returned']}"
    return None


async def clone_history(db: Any, count: int) -> None:
    """`count` more submitted audits with a photo each (records, GridFS files and chunks), cloned from the
    ones the phone made: the collections a phone's queries touch hold far more than that phone's audit."""
    audit = await db.audits.find_one({"status": "submitted"})
    photo = await db.photos.find_one({"owner_type": "audit"})
    assert audit is not None and photo is not None
    audits, photos, files, chunks = [], [], [], []
    for n in range(count):
        audit_id, photo_id = str(uuid.uuid4()), str(uuid.uuid4())
        started_at = audit["started_at"] - timedelta(hours=n + 1)
        audits.append({**audit, "_id": audit_id, "started_at": started_at,
                       "history_key": f"{started_at.isoformat()}|{audit_id}"})
        sha = uuid.uuid4().hex * 2
        gridfs_id = f"photo:{photo_id}"
        photos.append({**photo, "_id": photo_id, "audit_id": audit_id, "owner_key": f"audit:{audit_id}",
                       "sha256": sha, "dedup_key": f"audit:{audit_id}:{photo['item_id']}:{sha}",
                       "gridfs_id": gridfs_id, "thumbnails": {}})
        files.append({"_id": gridfs_id, "length": 4, "chunkSize": 1024 * 1024, "uploadDate": started_at,
                      "filename": "x.jpg", "metadata": {"photo_id": photo_id, "kind": "original"}})
        chunks.append({"files_id": gridfs_id, "n": 0, "data": b"seed"})
    await db.audits.insert_many(audits)
    await db.photos.insert_many(photos)
    await db["photos.files"].insert_many(files)
    await db["photos.chunks"].insert_many(chunks)


class Phone:
    def __init__(self, session: ClientSession, base: str, token: str, branch: dict[str, Any],
                 checklist: Checklist, clock: FakeClock) -> None:
        self.session, self.base, self.branch, self.checklist, self.clock = session, base, branch, checklist, clock
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, expect: int, **kw: Any) -> None:
        async with self.session.request(method, self.base + path, headers=self.headers, **kw) as resp:
            assert resp.status == expect, f"{method} {path}: {resp.status} {await resp.text()}"

    async def audit(self, seed: int) -> None:
        audit_id = str(uuid.uuid4())
        now = self.clock.now().isoformat()
        body = {"branch_id": self.branch["_id"], "checklist_key": self.checklist.key, "started_at": now,
                "location": self.branch["location"]}
        await self.call("PUT", f"/api/v1/audits/{audit_id}", 201, json=body)
        answers = [{"item_id": i.id, "value": passing_value(i), "answered_at": now}
                   for i in self.checklist.items() if i.type != "photo"]
        await self.call("PATCH", f"/api/v1/audits/{audit_id}/answers", 200, json=answers)
        form = FormData()
        form.add_field("item_id", next(i.id for i in self.checklist.items() if i.type == "photo"))
        photo = f.phone_jpeg(taken=self.clock.now().replace(tzinfo=None), size=(1600, 1200), seed=seed)
        form.add_field("file", photo, filename="p.jpg", content_type="image/jpeg")
        await self.call("POST", f"/api/v1/audits/{audit_id}/photos", 201, data=form)
        await self.call("POST", f"/api/v1/audits/{audit_id}/submit", 200)


@dataclasses.dataclass
class ListenedApp:
    """The API served on a client whose commands a listener sees, with the shipped checklist published."""

    services: Services
    base: str
    checklist: Checklist
    branch: dict[str, Any]


@contextlib.asynccontextmanager
async def listened_app(services: Services, mongo_uri: str,
                       listener: monitoring.CommandListener) -> AsyncIterator[ListenedApp]:
    name = services.settings.database_name
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_uri, w="majority", journal=True, tz_aware=True, event_listeners=[listener])
    listened = dataclasses.replace(services, client=client, db=client[name])
    await publish_shipped(services)
    head = await services.db.checklists.find_one({"_id": "branch-service"})
    assert head is not None
    checklist = await get_version(services.db, "branch-service", head["current_version"])
    branch = await services.db.branches.find_one({"code": "SH-LJZ"})
    assert checklist is not None and branch is not None
    app = create_app(listened, start_jobs=False, prepare_data=False, close_client=False)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield ListenedApp(listened, str(server.make_url("")).rstrip("/"), checklist, branch)
    finally:
        await server.close()
        await client.close()


async def test_a_phones_audit_and_its_background_work_read_no_more_than_they_return(
        services: Services, demo: dict[str, dict[str, str]], mongo_uri: str, clock: FakeClock) -> None:
    recorder = Recorder(services.settings.database_name)
    async with listened_app(services, mongo_uri, recorder) as served, ClientSession() as session:
        async with session.post(served.base + "/api/v1/auth/login", json=demo["inspector"]) as resp:
            token = (await resp.json())["access_token"]
        phone = Phone(session, served.base, token, served.branch, served.checklist, clock)
        for n in range(PRIOR_AUDITS):
            await phone.audit(seed=n)
            await drain(served.services)
        await clone_history(services.db, CLONED_AUDITS)
        recorder.recording = True
        await phone.audit(seed=99)
        await drain(served.services)
        recorder.recording = False
    assert recorder.commands, "nothing was recorded"
    problems: dict[str, str] = {}
    for command in recorder.commands:
        for collection, find in as_finds(command):
            why = verdict(collection, find, await explain(services.db, find), next(iter(command)))
            if why:
                shape = f"{next(iter(command))} on {collection} {sorted(find.get('filter', {}))}"
                problems.setdefault(shape, f"{shape}: {why} (e.g. {find.get('filter')})")
    assert not problems, "\n".join(problems.values())


def test_the_guard_refuses_empty_filters_scans_and_wasted_reads_on_growing_collections() -> None:
    indexed = {"stages": {"IXSCAN", "FETCH"}, "examined": 1, "returned": 1}
    chunks = {"find": "photos.chunks", "filter": {"files_id": "photo:1"}}
    assert verdict("photos.chunks", chunks, indexed) is None
    # The driver's GridFS upload: find_one({}) on the chunks, before every thumbnail.
    assert verdict("photos.chunks", {"find": "photos.chunks", "filter": {}, "limit": 1}, indexed) == "empty filter"
    scanned = {"stages": {"COLLSCAN"}, "examined": 5000, "returned": 1}
    assert verdict("audits", {"find": "audits", "filter": {"_id": "a", "status": "x"}}, scanned) == "collection scan"
    wasted = {"stages": {"IXSCAN", "FETCH"}, "examined": 400, "returned": 2}
    assert verdict("photos", {"find": "photos", "filter": {"audit_id": "a", "x": 1}}, wasted) is not None
    assert verdict("outbox_pending", {"find": "outbox_pending", "filter": {}}, scanned) is None  # drained
    assert verdict("audits", {"find": "audits", "filter": {"_id": "a"}, "limit": 1}, indexed, "findAndModify")
    update = {"update": "audits", "updates": [{"q": {"_id": "a"}, "u": {}}, {"q": {}, "u": {}}]}
    assert [find["filter"] for _, find in as_finds(update)] == [{"_id": "a"}, {}]


# Read whole by design: a photo's bytes, an event (the feed's row, and what every handler is given), the
# event log's positions ({_id, seq, type, subject}, all of which the feed reads), a login's throttle state
# (the account's and the address's, by key), and the administered records, stored as they are listed (a
# program, a planned visit, a branch: its row is the whole document; server.storage.records pages them).
WHOLE_BY_DESIGN = {"photos.chunks", "events", "event_log", "login_failures", "regions", "branches", "programs",
                   "assignments"}
# Pipeline stages after which a row is no longer a whole stored document.
SHAPING = {"$project", "$group", "$count", "$replaceRoot", "$replaceWith", "$bucket", "$sortByCount", "$unset"}
# A never-ending response: it reads what it sends as notifications arrive, not as a list.
NOT_LISTS = {"/api/v1/notifications/stream"}
# Drawn documents take a second each to render: called by one role, since the role changes only the
# filter of what they read (its scope), not the fields.
RENDERED = {"/api/v1/audits/{audit_id}/report.pdf": "compliance", "/api/v1/reports/trend.png": "compliance"}


def whole_documents(command: dict[str, Any]) -> str | None:
    """Why this command returns whole documents of a growing collection, several at a time, or None."""
    name = next(iter(command))
    collection = command[name]
    if collection in BOUNDED or collection in WHOLE_BY_DESIGN or name not in ("find", "aggregate"):
        return None
    if name == "find":
        key = (command.get("filter") or {}).get("_id")
        if command.get("limit") == 1 or (key is not None and not isinstance(key, dict)) or command.get("projection"):
            return None  # one document (a lookup by key), or named fields
        return "find without a projection"
    stages = {next(iter(stage)) for stage in command.get("pipeline") or [] if stage}
    if "$changeStream" in stages or stages & SHAPING:
        return None
    return "aggregate returning whole documents"


async def test_every_list_history_and_export_reads_only_the_fields_it_returns(
        services: Services, demo: dict[str, dict[str, str]], mongo_uri: str, clock: FakeClock) -> None:
    from tests.test_access_sweep import build, fill

    name = services.settings.database_name
    recorder = Recorder(name)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True, event_listeners=[recorder])
    recorded = dataclasses.replace(services, client=client, db=client[name])
    app = create_app(recorded, start_jobs=False, prepare_data=False, close_client=False)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    seen: dict[str, str] = {}
    try:
        async with ClientSession() as session:
            api = Api(session, str(server.make_url("")).rstrip("/"), demo)
            objects = await build(api, services, clock)
            await drain(services)  # notifications, feeds and deliveries as the handlers leave them
            for router in all_routers():
                for op in router.operations:
                    if op.method != "GET" or op.path in NOT_LISTS or not op.path.startswith("/api/"):
                        continue
                    path = fill(op.path, objects)
                    for role in sorted(op.roles or ()):
                        if role not in api.credentials or RENDERED.get(op.path, role) != role:
                            continue
                        recorder.commands.clear()
                        recorder.recording = True
                        resp = await api.call("GET", path, role)
                        recorder.recording = False
                        assert resp.status < 500, f"GET {path} as {role}: {resp.status}"
                        for command in recorder.commands:
                            why = whole_documents(command)
                            if why:
                                kind = next(iter(command))
                                seen.setdefault(f"{kind} on {command[kind]} {sorted(command.get('filter') or {})}",
                                                f"{why} (GET {op.path} as {role})")
    finally:
        await server.close()
        await client.close()
    assert not seen, "\n".join(f"{shape}: {why}" for shape, why in sorted(seen.items()))


def test_the_guard_refuses_lists_that_read_whole_documents() -> None:
    assert whole_documents({"find": "findings", "filter": {"branch_id": "b"}, "limit": 51}) is not None
    assert whole_documents({"find": "findings", "filter": {"branch_id": "b"}, "projection": {"title": 1}}) is None
    assert whole_documents({"find": "users", "filter": {"_id": "u"}, "limit": 1}) is None  # one, by key
    assert whole_documents({"aggregate": "audits", "pipeline": [{"$match": {}}, {"$sort": {"at": -1}}]})
    assert whole_documents({"aggregate": "audits", "pipeline": [{"$match": {}}, {"$group": {"_id": "$x"}}]}) is None
    assert whole_documents({"find": "leases", "filter": {}}) is None  # bounded
    assert whole_documents({"find": "login_failures", "filter": {"_id": "u"}}) is None  # at most one
    assert whole_documents({"find": "users", "filter": {"_id": {"$in": ["u", "v"]}}}) is not None
