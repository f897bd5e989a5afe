"""OWASP API1 (broken object level authorization): every endpoint with an object id in its path, called by
every role outside the object's scope, is refused (403/404, never 2xx or 5xx) and leaves the object as it was.

The operations come from the route registry: a new endpoint with a path id and no entry in SWEEP fails
`test_every_object_endpoint_has_a_sweep_entry`."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import FormData

from server.clock import FakeClock
from server.context import ActorInfo, Services, UnitOfWork
from server.handlers import rectifications as rect_handler
from server.http.routes import all_routers
from server.storage.notifications import insert_notification
from tests import image_factory
from tests.audit_factories import ids_by, passing_answers, publish_checklist, start_body
from tests.conftest import Api

# Callers outside branch A's objects (SH-LJZ, region EAST; audited by the demo inspector).
HEAD_SAME_REGION = "head_ja"  # branch head of SH-JA, same region
HEAD_OTHER_REGION = "head_mad"  # branch head of MAD-GV
RM_OTHER = "rm_iberia"  # regional manager of the other region
INSPECTOR_OTHER = "inspector_other"
SHOPPER_OTHER = "shopper_other"
INTEGRATION = "integration_user"
OUTSIDERS = (HEAD_SAME_REGION, HEAD_OTHER_REGION, RM_OTHER, INSPECTOR_OTHER, SHOPPER_OTHER, INTEGRATION)
REFUSED = frozenset({403, 404})
TUS = {"Tus-Resumable": "1.0.0"}
PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")


@dataclass(frozen=True)
class Entry:
    """How to call one operation on the fixture objects and which outsiders legitimately may."""

    allowed: frozenset[str] = frozenset()
    body: Callable[[Objects], dict[str, Any]] | None = None
    refusals: frozenset[int] = REFUSED
    why: str = ""


@dataclass
class Objects:
    ids: dict[str, str] = field(default_factory=dict)
    start: dict[str, Any] = field(default_factory=dict)
    jpeg: bytes = b""


def _json(payload: Any) -> Callable[[Objects], dict[str, Any]]:
    return lambda _objects: {"json": payload}


def _photo_form(item_id: str | None) -> Callable[[Objects], dict[str, Any]]:
    def make(objects: Objects) -> dict[str, Any]:
        form = FormData()
        if item_id:
            form.add_field("item_id", item_id)
        form.add_field("file", objects.jpeg, filename="p.jpg", content_type="image/jpeg")
        return {"data": form}

    return make


def _tus_patch(_objects: Objects) -> dict[str, Any]:
    return {"data": b"x" * 10,
            "headers": {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}}


def _tus(_objects: Objects) -> dict[str, Any]:
    return {"headers": dict(TUS)}


EVERYONE = frozenset(OUTSIDERS)
FIELD_AND_INTEGRATION = frozenset({INSPECTOR_OTHER, SHOPPER_OTHER, INTEGRATION})
# server.domain.audit_access.HEAD_OFFICE_VIEW: an integration reads every audit, as the event feed does.
HEAD_OFFICE_READER = frozenset({INTEGRATION})
LATER = (datetime(2026, 11, 2, 1, 0, tzinfo=UTC) + timedelta(days=20)).isoformat()

SWEEP: dict[str, Entry] = {
    "GET /api/v1/branches/{branch_id}": Entry(
        allowed=FIELD_AND_INTEGRATION, why="the organisation directory is open to roles without a branch scope"),
    "GET /api/v1/users/{user_id}": Entry(),
    "GET /api/v1/checklists/{key}": Entry(allowed=EVERYONE, why="checklists are published to everyone"),
    "GET /api/v1/checklists/{key}/versions/{version:\\d+}": Entry(allowed=EVERYONE),
    "GET /api/v1/checklists/{key}/versions": Entry(allowed=EVERYONE),
    "GET /api/v1/programs/{program_id}": Entry(),
    "POST /api/v1/programs/{program_id}/assignments": Entry(body=_json({})),
    "PUT /api/v1/audits/{audit_id}": Entry(
        body=lambda o: {"json": o.start}, refusals=frozenset({403, 404, 409}),
        why="a client-chosen UUID already in use is a 409 for any auditor; nothing about the audit is shown"),
    "PATCH /api/v1/audits/{audit_id}/answers": Entry(
        body=lambda o: {"json": passing_answers(datetime(2026, 11, 2, 1, 0, tzinfo=UTC), hall_clean=True)[:1]}),
    "POST /api/v1/audits/{audit_id}/submit": Entry(),
    "POST /api/v1/audits/{audit_id}/release": Entry(),
    "POST /api/v1/audits/{audit_id}/return": Entry(body=_json({"comment": "redo"})),
    "GET /api/v1/audits/{audit_id}": Entry(allowed=HEAD_OFFICE_READER),
    "POST /api/v1/audits/{audit_id}/photos": Entry(body=_photo_form("hall_clean")),
    "POST /api/v1/rectifications/{rectification_id}/photos": Entry(body=_photo_form(None)),
    "GET /api/v1/audits/{audit_id}/photos": Entry(allowed=HEAD_OFFICE_READER),
    "GET /api/v1/photos/{photo_id}": Entry(allowed=HEAD_OFFICE_READER),
    "GET /api/v1/photos/{photo_id}/thumbnail": Entry(allowed=HEAD_OFFICE_READER),
    "GET /api/v1/photos/{photo_id}/meta": Entry(allowed=HEAD_OFFICE_READER),
    "DELETE /api/v1/photos/{photo_id}": Entry(),
    "HEAD /api/v1/uploads/{upload_id}": Entry(body=_tus),
    "PATCH /api/v1/uploads/{upload_id}": Entry(body=_tus_patch),
    "DELETE /api/v1/uploads/{upload_id}": Entry(body=_tus),
    "GET /api/v1/uploads/{upload_id}": Entry(body=_tus),
    "POST /api/v1/findings/{finding_id}/appeal-photos": Entry(body=_photo_form(None)),
    "POST /api/v1/findings/{finding_id}/appeal": Entry(body=_json({"reason": "we disagree"})),
    "POST /api/v1/appeals/{appeal_id}/decision": Entry(body=_json({"outcome": "overturned", "comment": "ok"})),
    "GET /api/v1/appeals/{appeal_id}/rescore-preview": Entry(),
    "GET /api/v1/rectifications/{rect_id}": Entry(),
    "POST /api/v1/rectifications/{rect_id}/submit": Entry(body=_json({"note": "done"})),
    "POST /api/v1/rectifications/{rect_id}/verify": Entry(body=_json({"comment": "fine"})),
    "POST /api/v1/rectifications/{rect_id}/reject": Entry(body=_json({"comment": "not fixed"})),
    "POST /api/v1/rectifications/{rect_id}/extension": Entry(
        body=_json({"requested_due_at": LATER, "reason": "parts on order"})),
    "POST /api/v1/rectifications/{rect_id}/extension/decision": Entry(body=_json({"approve": True})),
    "POST /api/v1/notifications/{notification_id}/read": Entry(),
    "GET /api/v1/audits/{audit_id}/report.pdf": Entry(),
    "POST /api/v1/events/failures/{failure_id}/retry": Entry(),
    "GET /api/v1/webhooks/{webhook_id}": Entry(),
    "DELETE /api/v1/webhooks/{webhook_id}": Entry(),
    "GET /api/v1/webhooks/{webhook_id}/deliveries": Entry(),
    # Administration (issue 17): admins, or compliance for programs and visits; nobody outside.
    "PATCH /api/v1/users/{user_id}": Entry(body=_json({"active": False})),
    "POST /api/v1/users/{user_id}/password-reset": Entry(),
    "PATCH /api/v1/regions/{region_id}": Entry(body=_json({"name": "renamed"})),
    "PATCH /api/v1/branches/{branch_id}": Entry(body=_json({"timezone": "Europe/Madrid"})),
    "POST /api/v1/branches/{branch_id}/close": Entry(body=_json({"reason": "closed"})),
    "PATCH /api/v1/programs/{program_id}": Entry(body=_json({"name": "renamed"})),
    "POST /api/v1/programs/{program_id}/cancel": Entry(body=_json({"reason": "cancelled"})),
    "PATCH /api/v1/assignments/{assignment_id}": Entry(
        body=_json({"window_start": "2026-11-05T10:00:00+08:00", "window_end": "2026-11-05T12:00:00+08:00"})),
    "POST /api/v1/assignments/{assignment_id}/cancel": Entry(body=_json({"reason": "cancelled"})),
    "POST /api/v1/checklists/{key}/retire": Entry(body=_json({"reason": "withdrawn"})),
    "POST /api/v1/checklists/{key}/restore": Entry(),
    "PATCH /api/v1/webhooks/{webhook_id}": Entry(body=_json({"active": False})),
    "POST /api/v1/webhooks/{webhook_id}/rotate-secret": Entry(),
    "GET /api/v1/users/{user_id}/sessions": Entry(),
    "POST /api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver": Entry(),
}

# Collections whose fixture documents must be unchanged by the refused calls.
WATCHED = ("audits", "findings", "appeals", "rectifications", "photos", "notifications", "webhook_subscriptions",
           "webhook_deliveries", "regions", "checklists", "programs",
           "assignments", "tus_uploads", "users", "branches")


def object_operations() -> list[str]:
    return [f"{op.method} {op.path}" for router in all_routers() for op in router.operations if "{" in op.path]


def test_every_object_endpoint_has_a_sweep_entry() -> None:
    served = set(object_operations())
    assert served - set(SWEEP) == set(), "add these operations to SWEEP (fixture object and allowed roles)"
    assert set(SWEEP) - served == set(), "these SWEEP entries no longer exist"


async def _outsiders(api: Api, services: Services) -> None:
    branches = await ids_by(services.db, "branches", "code")
    regions = await ids_by(services.db, "regions", "code")
    people: list[tuple[str, str, dict[str, str]]] = [
        (HEAD_SAME_REGION, "branch_head", {"branch_id": branches["SH-JA"]["_id"]}),
        (HEAD_OTHER_REGION, "branch_head", {"branch_id": branches["MAD-GV"]["_id"]}),
        (RM_OTHER, "regional_manager", {"region_id": regions["IBERIA"]["_id"]}),
        (INSPECTOR_OTHER, "inspector", {"region_id": regions["EAST"]["_id"]}),
        (SHOPPER_OTHER, "mystery_shopper", {}),
        (INTEGRATION, "integration", {}),
    ]
    for username, role, scope in people:
        password = "sweep-" + uuid.uuid4().hex
        await api.json("POST", "/api/v1/users", "admin", expect=201, json={
            "username": username, "password": password, "role": role, "display_name": username, **scope})
        await api.login(username, password)


async def _released_audit(api: Api, services: Services, clock: FakeClock, objects: Objects) -> None:
    """An audit of SH-LJZ by the demo inspector, with a failed item, photos, a tus upload, then released."""
    db = services.db
    await publish_checklist(db)
    branch = (await ids_by(db, "branches", "code"))["SH-LJZ"]
    objects.ids["branch_id"] = branch["_id"]
    audit_id = str(uuid.uuid4())
    objects.ids["audit_id"] = audit_id
    started = clock.now() - timedelta(minutes=20)
    objects.start = start_body(branch["_id"], started, location={"lat": 31.2397, "lon": 121.4998})
    await api.json("PUT", f"/api/v1/audits/{audit_id}", "inspector", expect=201, json=objects.start)
    taken = datetime(2026, 11, 2, 8, 55)
    for n, item_id in enumerate(("lobby_photo", "hall_clean")):
        form = FormData()
        form.add_field("item_id", item_id)
        form.add_field("file", image_factory.phone_jpeg(taken=taken, seed=n + 1), filename="p.jpg",
                       content_type="image/jpeg")
        photo = await api.json("POST", f"/api/v1/audits/{audit_id}/photos", "inspector", expect=201, data=form)
        objects.ids.setdefault("photo_id", photo["id"])
    meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}"
                    for k, v in {"audit_id": audit_id, "item_id": "badge_worn", "filename": "b.jpg"}.items())
    resp = await api.call("POST", "/api/v1/uploads", "inspector",
                          headers={**TUS, "Upload-Length": "1000", "Upload-Metadata": meta})
    assert resp.status == 201, await resp.text()
    objects.ids["upload_id"] = resp.headers["Location"].rsplit("/", 1)[1]
    await api.json("PATCH", f"/api/v1/audits/{audit_id}/answers", "inspector", expect=200,
                   json=passing_answers(clock.now(), hall_clean=False))
    await api.json("POST", f"/api/v1/audits/{audit_id}/submit", "inspector", expect=200)
    await api.json("POST", f"/api/v1/audits/{audit_id}/release", "compliance", expect=200)
    released = await db.events.find_one({"type": "audit.released", "subject.id": audit_id})
    assert released is not None

    async def work(uow: UnitOfWork) -> None:
        await rect_handler.HANDLERS[0].handle(uow, released)

    await services.transact(ActorInfo.system("dispatcher"), work)
    finding = await db.findings.find_one({"audit_id": audit_id, "item_id": "hall_clean"})
    rect = await db.rectifications.find_one({"audit_id": audit_id})
    assert finding is not None and rect is not None
    objects.ids.update(finding_id=finding["_id"], rect_id=rect["_id"], rectification_id=rect["_id"])


async def build(api: Api, services: Services, clock: FakeClock) -> Objects:
    objects = Objects(jpeg=image_factory.phone_jpeg(taken=datetime(2026, 11, 2, 8, 58), seed=9))
    await _outsiders(api, services)
    await _released_audit(api, services, clock, objects)
    db = services.db
    head = await db.users.find_one({"username": api.credentials["branch_head"]["username"]})
    assert head is not None and head["branch_id"] == objects.ids["branch_id"]
    objects.ids["user_id"] = head["_id"]
    form = FormData()
    form.add_field("file", image_factory.phone_jpeg(taken=datetime(2026, 11, 2, 8, 59), seed=7),
                   filename="after.jpg", content_type="image/jpeg")
    await api.json("POST", f"/api/v1/rectifications/{objects.ids['rect_id']}/photos", "branch_head",
                   expect=201, data=form)
    appeal = await api.json("POST", f"/api/v1/findings/{objects.ids['finding_id']}/appeal", "branch_head",
                            expect=201, json={"reason": "the hall was being cleaned"})
    objects.ids["appeal_id"] = appeal["id"]
    await api.json("POST", f"/api/v1/rectifications/{objects.ids['rect_id']}/extension", "branch_head",
                   expect=200, json={"requested_due_at": LATER, "reason": "contractor"})
    program = await api.json("POST", "/api/v1/programs", "compliance", expect=201, json={
        "name": "sweep", "checklist_key": "test-visit", "branch_ids": [objects.ids["branch_id"]],
        "starts_on": "2026-11-02", "ends_on": "2026-11-30", "visits_per_branch": 1})
    objects.ids["program_id"] = program["id"]
    visits = await api.json("POST", f"/api/v1/programs/{program['id']}/assignments", "compliance", expect=201)
    objects.ids["assignment_id"] = visits["items"][0]["id"]
    objects.ids["region_id"] = (await db.branches.find_one({"_id": objects.ids["branch_id"]}) or {})["region_id"]
    webhook = await api.json("POST", "/api/v1/webhooks", "admin", expect=201,
                             json={"url": "http://127.0.0.1:9/hook", "event_types": ["audit.released"]})
    objects.ids["webhook_id"] = webhook["id"]
    notification_id = str(uuid.uuid4())

    async def notify(uow: UnitOfWork) -> None:
        await insert_notification(uow.db, uow.session, notification_id=notification_id, user_id=head["_id"],
                                  kind="rectification.created", title="Fix the hall", body="Due soon",
                                  data={"rectification_id": objects.ids["rect_id"]}, now=clock.now())

    await services.transact(ActorInfo.system("test"), notify)
    objects.ids.update(notification_id=notification_id, failure_id=str(uuid.uuid4()), key="test-visit",
                       delivery_id=str(uuid.uuid4()),
                       version="1")
    return objects


# Derived caches an allowed reader may fill (a thumbnail made on demand): not the object's state.
CACHES = {"thumbnails", "variants"}


async def snapshot(services: Services) -> dict[str, list[Any]]:
    return {name: [{k: v for k, v in doc.items() if k not in CACHES}
                   for doc in await services.db[name].find({}).sort("_id", 1).to_list()] for name in WATCHED}


def fill(path: str, objects: Objects) -> str:
    return PARAM.sub(lambda m: objects.ids[m.group(1)], path)


@pytest.mark.slow
async def test_outsiders_are_refused_every_object_and_change_nothing(
        api: Api, services: Services, clock: FakeClock) -> None:
    objects = await build(api, services, clock)
    before = await snapshot(services)
    failures: list[str] = []
    calls = 0
    for op in object_operations():
        entry = SWEEP[op]
        method, template = op.split(" ", 1)
        path = fill(template, objects)
        for who in OUTSIDERS:
            kwargs = entry.body(objects) if entry.body else {}
            resp = await api.call(method, path, who, **kwargs)
            calls += 1
            if who in entry.allowed:
                if resp.status != 200:
                    failures.append(f"{op} as {who}: expected 200, got {resp.status}")
            elif resp.status not in entry.refusals:
                failures.append(f"{op} as {who}: {resp.status} {(await resp.read())[:160]!r}")
            elif method != "HEAD" and resp.content_type != "application/problem+json":
                failures.append(f"{op} as {who}: {resp.status} is not problem+json ({resp.content_type})")
    assert failures == [], "\n".join(failures)
    assert calls == len(SWEEP) * len(OUTSIDERS)
    after = await snapshot(services)
    for name in WATCHED:
        changed = [(b, a) for b, a in zip(before[name], after[name], strict=True) if a != b]
        assert len(after[name]) == len(before[name]) and changed == [], f"{name} changed: {changed}"


@pytest.mark.slow
async def test_the_fixture_objects_are_real_for_those_in_scope(
        api: Api, services: Services, clock: FakeClock) -> None:
    """The refusals above are not vacuous: the same ids answer 200 to callers in scope."""
    objects = await build(api, services, clock)
    ids = objects.ids
    insiders: list[tuple[str, str]] = [
        (f"/api/v1/audits/{ids['audit_id']}", "branch_head"),
        (f"/api/v1/audits/{ids['audit_id']}", "regional_manager"),
        (f"/api/v1/audits/{ids['audit_id']}", "inspector"),
        (f"/api/v1/audits/{ids['audit_id']}/photos", "branch_head"),
        (f"/api/v1/photos/{ids['photo_id']}/meta", "branch_head"),
        (f"/api/v1/photos/{ids['photo_id']}", "inspector"),
        (f"/api/v1/rectifications/{ids['rect_id']}", "branch_head"),
        (f"/api/v1/rectifications/{ids['rect_id']}", "inspector"),
        (f"/api/v1/branches/{ids['branch_id']}", "branch_head"),
        (f"/api/v1/users/{ids['user_id']}", "branch_head"),
        (f"/api/v1/programs/{ids['program_id']}", "compliance"),
        (f"/api/v1/webhooks/{ids['webhook_id']}", "admin"),
        (f"/api/v1/audits/{ids['audit_id']}/report.pdf", "branch_head"),
    ]
    for path, who in insiders:
        resp = await api.call("GET", path, who)
        assert resp.status == 200, (path, who, resp.status)
    resp = await api.call("HEAD", f"/api/v1/uploads/{ids['upload_id']}", "inspector", headers=TUS)
    assert resp.status == 200
    page = await api.json("GET", "/api/v1/notifications", "branch_head", expect=200)
    assert ids["notification_id"] in [n["id"] for n in page["items"]]
    appeals = await api.json("GET", "/api/v1/appeals", "branch_head", expect=200)
    assert ids["appeal_id"] in [a["id"] for a in appeals["items"]]


LISTINGS = ("/api/v1/audits", "/api/v1/findings", "/api/v1/rectifications", "/api/v1/appeals",
            "/api/v1/notifications", "/api/v1/assignments", "/api/v1/exports/audits.csv",
            "/api/v1/exports/findings.csv")


@pytest.mark.slow
async def test_listings_never_show_another_scopes_objects(api: Api, services: Services, clock: FakeClock) -> None:
    objects = await build(api, services, clock)
    secret_ids = [objects.ids[k] for k in ("audit_id", "finding_id", "rect_id", "appeal_id", "notification_id")]
    for path in LISTINGS:
        for who in (HEAD_SAME_REGION, HEAD_OTHER_REGION, RM_OTHER, INSPECTOR_OTHER, SHOPPER_OTHER):
            for query in ("", f"?branch_id={objects.ids['branch_id']}"):
                resp = await api.call("GET", path + query, who)
                text = await resp.text()
                assert resp.status in (200, 403, 404, 422), (path, who, resp.status, text[:200])
                leaked = [i for i in secret_ids if i in text]
                assert leaked == [], (path + query, who, leaked)
