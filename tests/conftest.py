"""Test harness: one embedded MongoDB-protocol server per session (or MONGODB_URI), a fresh database per
test, and the real application on a real port reached through a real HTTP client."""

from __future__ import annotations

import copy
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, ClientSession
from aiohttp.test_utils import TestServer

from server.app import bootstrap, create_app
from server.clock import FakeClock
from server.context import Services
from server.db import ensure_indexes
from server.demo import seed_demo
from server.embedded import EmbeddedMongo, EmbeddedServer
from server.jobs.dispatcher import drain
from server.settings import Settings

# Also run on the Python fallback server by `make test` (-m smoke): logins, a phone's whole audit with its
# photos, and the rectification work it opens.
SMOKE_MODULES = {"test_auth.py", "test_audits_api.py", "test_photos_api.py", "test_rectifications_api.py"}


# A browser drops keep-alive requests as it pleases, and the test server's stop cancels the handlers still
# running; the driver then leaves that request's database socket to the garbage collector. It is closed there,
# and nothing is lost, but the unraisable-exception warning would fail whichever test happens to be running.
BROWSER_SOCKETS_LEFT_TO_GC = pytest.mark.filterwarnings(
    "ignore:Exception ignored in:pytest.PytestUnraisableExceptionWarning"
)


# `make test` runs one pytest worker per core (pytest-xdist, -n auto --dist loadgroup), and a group's tests run one
# after another on one worker. contract_fuzz: its roles share one server process (a module fixture), started once.
# timing: tests that kill, freeze or count a database or server process against a clock run one after another,
# not against each other.
XDIST_GROUPS = {
    "test_contract_fuzz.py": "contract_fuzz",
    "test_database_process.py": "timing",
    "test_embedded_durability.py": "timing",
    "test_jobs_quiet.py": "timing",
    "test_supervisor.py": "timing",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in SMOKE_MODULES:
            item.add_marker(pytest.mark.smoke)
        if item.path.parent.name == "browser":
            item.add_marker(BROWSER_SOCKETS_LEFT_TO_GC)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """--dist loadgroup by XDIST_GROUPS: xdist's own reads xdist_group marks into node ids, which pytest 9.2 no
    longer lets a plugin rename, so its groups were silently ignored. Every other test is a unit of its own."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):  # type: ignore[misc]  # xdist ships no type information
        def _split_scope(self, nodeid: str) -> str:
            return XDIST_GROUPS.get(Path(nodeid.split("::", 1)[0]).name, nodeid)

    return ByGroup(config, log)


def pytest_report_header() -> str:
    if os.environ.get("MONGODB_URI"):
        return "database: MONGODB_URI"
    return f"database: embedded {EmbeddedServer.from_settings().kind} server (EMBEDDED_DB=rust|python chooses)"


@pytest.fixture(scope="session")
def mongo_uri() -> Iterator[str]:
    external = os.environ.get("MONGODB_URI")
    if external:
        yield external
        return
    server = EmbeddedMongo(":memory:")
    server.start()
    yield server.uri
    server.stop()


@pytest.fixture(autouse=True)
def root_logging_restored() -> Iterator[None]:
    """A command run in a test (cli main) points the root logger at that test's captured stderr; a later test
    must not log into the closed capture ("--- Logging error ---")."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 2, 1, 0, tzinfo=UTC))  # a Monday, 09:00 in Shanghai


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        mongodb_uri="unused-by-tests",
        database_name=f"t_{uuid.uuid4().hex[:16]}",
        var_dir=tmp_path / "var",
        jwt_secret="test-secret-" + uuid.uuid4().hex,
        seed_demo=False,
        publish_checklists=False,
        run_jobs=False,
        webhook_allow_private=True,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        log_level="WARNING",
        log_format="text",
    )


@pytest.fixture
async def services(settings: Settings, mongo_uri: str, clock: FakeClock) -> AsyncIterator[Services]:
    svc = bootstrap(settings, mongo_uri, clock=clock)
    await ensure_indexes(svc.db)
    yield svc
    try:
        await svc.client.drop_database(settings.database_name)
    finally:
        svc.close()
        await svc.client.close()


def reconfigure(services: Services, **changes: Any) -> None:
    """Change settings within a test. Settings are frozen once read, so the services get a changed copy,
    and what was derived from the old copy is derived again on its next use."""
    services.settings = services.settings.model_copy(update=changes)
    for derived in ("reminder_policy", "due_end_of_day", "pseudonym_key"):
        services.__dict__.pop(derived, None)


class Api:
    """A real HTTP client bound to the test server, with per-role logins from the demo organisation."""

    def __init__(self, session: ClientSession, base: str, credentials: dict[str, dict[str, str]]) -> None:
        self.session = session
        self.base = base
        self.credentials = credentials
        self.tokens: dict[str, str] = {}

    def url(self, path: str) -> str:
        return self.base + path

    async def login(self, role_or_username: str, password: str | None = None) -> dict[str, Any]:
        creds = self.credentials.get(role_or_username)
        username = creds["username"] if creds else role_or_username
        pw = password or (creds["password"] if creds else "")
        async with self.session.post(self.url("/api/v1/auth/login"),
                                     json={"username": username, "password": pw}) as resp:
            body = await resp.json()
            assert resp.status == 200, body
        self.tokens[role_or_username] = body["access_token"]
        return dict(body)

    async def token(self, who: str) -> str:
        if who not in self.tokens:
            await self.login(who)
        return self.tokens[who]

    async def call(self, method: str, path: str, who: str | None = None, **kw: Any) -> ClientResponse:
        headers = dict(kw.pop("headers", {}) or {})
        if who is not None:
            headers["Authorization"] = f"Bearer {await self.token(who)}"
        resp = await self.session.request(method, self.url(path), headers=headers, **kw)
        await resp.read()
        return resp

    async def json(self, method: str, path: str, who: str | None = None, expect: int | None = None,
                   **kw: Any) -> Any:
        resp = await self.call(method, path, who, **kw)
        text = await resp.text()
        if expect is not None:
            assert resp.status == expect, f"{method} {path} -> {resp.status}: {text[:2000]}"
        return json.loads(text) if text else None


# The demo organisation is seeded once per clock time and settings, then copied into each test's own
# database: the same documents in a fresh database, about 6x cheaper than seeding again (Argon2 and one
# transaction per test). Settings that differ per test (its database, directory, secret) do not change it.
DemoTemplate = tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, str]]]
_demo_templates: dict[tuple[datetime, str], DemoTemplate] = {}


@pytest.fixture
async def demo(services: Services) -> dict[str, dict[str, str]]:
    """The demo organisation in this test's database; returns its credentials by role."""
    return await demo_organisation(services)


async def demo_organisation(services: Services) -> dict[str, dict[str, str]]:
    """The demo organisation in `services`' database (on any server); returns its credentials by role."""
    per_test = {"database_name", "var_dir", "jwt_secret"}
    key = (services.clock.now(), services.settings.model_dump_json(exclude=per_test))
    if key not in _demo_templates:
        credentials = await seed_demo(services)
        await drain(services)  # the organisation's own events were handled long before the test began
        documents = {name: await services.db[name].find().to_list()
                     for name in await services.db.list_collection_names()}
        _demo_templates[key] = ({name: docs for name, docs in documents.items() if docs}, credentials)
        return {role: dict(login) for role, login in credentials.items()}
    documents, credentials = _demo_templates[key]
    for name, docs in documents.items():
        await services.db[name].insert_many(copy.deepcopy(docs))
    return {role: dict(login) for role, login in credentials.items()}


@pytest.fixture
async def api(services: Services, demo: dict[str, dict[str, str]]) -> AsyncIterator[Api]:
    app = create_app(services, start_jobs=False, prepare_data=False, close_client=False)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with ClientSession() as session:
        yield Api(session, str(server.make_url("")).rstrip("/"), demo)
    await server.close()


def assert_problem(resp: ClientResponse, body: Any, status: int) -> None:
    assert resp.status == status, body
    assert resp.content_type == "application/problem+json", resp.content_type
    for key in ("type", "title", "status", "detail"):
        assert key in body, body
