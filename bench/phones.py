"""Scenario code shared by `make load` and `make faults`: an HTTP client that retries like a phone on a bad
network (random replays, requests dropped mid-flight, backoff on 503 with Retry-After), the personas that
use it (phones, branch heads, compliance), the ledger of acknowledged writes and the database check that
every acknowledged write is stored exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import numpy as np
from PIL import Image
from pymongo import MongoClient

API = "/api/v1"
RETRYABLE = {429, 502, 503, 504}
DATABASE_NAME = "branch_audit"


# --- figures ----------------------------------------------------------------------------------------


class Stats:
    """Latency per operation (completed HTTP exchanges) and outcomes per operation."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {}
        self.outcomes: dict[str, Counter[str]] = {}
        self.problems: list[str] = []
        self.started = time.perf_counter()
        self.stopped: float | None = None
        self.phase = "load"  # fault runs name the phase in progress; outcomes are also counted per phase
        self.by_phase: dict[str, Counter[str]] = {}
        self.slowest_by_phase: dict[str, float] = {}

    def record(self, op: str, seconds: float | None, outcome: str) -> None:
        if seconds is not None:
            self.latencies.setdefault(op, []).append(seconds)
            self.slowest_by_phase[self.phase] = max(seconds, self.slowest_by_phase.get(self.phase, 0.0))
        self.outcomes.setdefault(op, Counter())[outcome] += 1
        self.by_phase.setdefault(self.phase, Counter())[outcome] += 1

    def problem(self, text: str) -> None:
        if len(self.problems) < 200:
            self.problems.append(text)

    def stop(self) -> None:
        self.stopped = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return (self.stopped or time.perf_counter()) - self.started

    def totals(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for counts in self.outcomes.values():
            total.update(counts)
        return total

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for op in sorted(set(self.latencies) | set(self.outcomes)):
            lat = sorted(self.latencies.get(op, []))
            counts = self.outcomes.get(op, Counter())
            errors = sum(n for k, n in counts.items() if not k.startswith(("2", "3")))
            rows.append({
                "operation": op,
                "requests": sum(counts.values()),
                "per_s": round(len(lat) / self.elapsed, 2) if self.elapsed else 0.0,
                "p50_ms": _pct(lat, 0.50),
                "p95_ms": _pct(lat, 0.95),
                "p99_ms": _pct(lat, 0.99),
                "max_ms": round(lat[-1] * 1000, 1) if lat else None,
                "errors": errors,
                "outcomes": dict(sorted(counts.items())),
            })
        return rows

    def table(self) -> str:
        header = f"{'operation':<34}{'count':>7}{'/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}  outcomes"
        lines = [header, "-" * len(header)]
        for r in self.rows():
            outcomes = " ".join(f"{k}:{v}" for k, v in r["outcomes"].items())
            lines.append(
                f"{r['operation']:<34}{r['requests']:>7}{r['per_s']:>8}{_fmt(r['p50_ms']):>9}"
                f"{_fmt(r['p95_ms']):>9}{_fmt(r['p99_ms']):>9}{_fmt(r['max_ms']):>9}  {outcomes}"
            )
        return "\n".join(lines)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(len(values) * q))] * 1000, 1)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


@dataclass
class Ledger:
    """Every write the server acknowledged with a 2xx, as the clients saw it."""

    started_audits: set[str] = field(default_factory=set)
    answered: dict[str, set[str]] = field(default_factory=dict)  # audit id -> item ids acknowledged
    submitted_audits: set[str] = field(default_factory=set)
    released_audits: set[str] = field(default_factory=set)
    photos: dict[str, str] = field(default_factory=dict)  # photo id -> sha256
    rectification_photos: dict[str, str] = field(default_factory=dict)
    submitted_rectifications: set[str] = field(default_factory=set)
    verified_rectifications: set[str] = field(default_factory=set)

    def counts(self) -> dict[str, int]:
        return {
            "audits_started": len(self.started_audits),
            "answer_batches_items": sum(len(v) for v in self.answered.values()),
            "audits_submitted": len(self.submitted_audits),
            "audits_released": len(self.released_audits),
            "audit_photos": len(self.photos),
            "rectification_photos": len(self.rectification_photos),
            "rectifications_submitted": len(self.submitted_rectifications),
            "rectifications_verified": len(self.verified_rectifications),
        }


# --- the network ------------------------------------------------------------------------------------


@dataclass
class Behaviour:
    """How badly the network and the phones behave."""

    replay_p: float = 0.10  # send an acknowledged request again (a phone that missed the answer)
    drop_p: float = 0.05  # cancel a request mid-flight, then retry it
    timeout_s: float = 10.0  # client timeout for ordinary requests
    upload_timeout_s: float = 40.0
    give_up_s: float = 90.0  # a phone keeps retrying one request this long


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Unavailable(Exception):
    """A request kept failing for longer than a phone would retry it."""


class Stopped(Exception):
    """The run's deadline passed while waiting to retry."""


BodyFactory = Callable[[], Any]


class Http:
    """aiohttp with a phone's habits; every exchange lands in `stats`."""

    def __init__(self, session: aiohttp.ClientSession, base: str, stats: Stats, behaviour: Behaviour,
                 rng: random.Random, stop_at: Callable[[], bool]) -> None:
        self.session = session
        self.base = base
        self.stats = stats
        self.behaviour = behaviour
        self.rng = rng
        self.stop_at = stop_at

    async def _once(self, op: str, method: str, path: str, headers: dict[str, str], body: BodyFactory | None,
                    limit_s: float) -> Reply:
        kwargs: dict[str, Any] = {"headers": headers, "timeout": aiohttp.ClientTimeout(total=limit_s)}
        if body is not None:
            payload = body()
            if isinstance(payload, aiohttp.FormData):
                kwargs["data"] = payload
            else:
                kwargs["json"] = payload
        async with self.session.request(method, self.base + path, **kwargs) as resp:
            data = await resp.read()
            return Reply(resp.status, {k.lower(): v for k, v in resp.headers.items()}, data)

    async def call(self, op: str, method: str, path: str, *, token: str | None = None,
                   body: BodyFactory | None = None, headers: dict[str, str] | None = None,
                   ok: tuple[int, ...] = (200, 201, 204, 304), replayable: bool = True,
                   upload: bool = False) -> Reply:
        """Send until a final answer arrives: 503/429/connection errors are retried with backoff."""
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        timeout = self.behaviour.upload_timeout_s if upload else self.behaviour.timeout_s
        began = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            if replayable and self.rng.random() < self.behaviour.drop_p:
                # The phone loses the connection mid-request; the server may or may not have acted.
                with contextlib.suppress(TimeoutError, aiohttp.ClientError):
                    await asyncio.wait_for(self._once(op, method, path, hdrs, body, timeout),
                                           self.rng.uniform(0.001, 0.05))
                self.stats.record(op, None, "dropped")
            started = time.perf_counter()
            try:
                reply = await self._once(op, method, path, hdrs, body, timeout)
            except TimeoutError:
                self.stats.record(op, None, "client_timeout")
                self.stats.problem(f"{method} {path}: no answer within {timeout}s")
                reply = None
            except aiohttp.ClientError as exc:
                self.stats.record(op, None, "conn_error")
                if attempt <= 2:
                    self.stats.problem(f"{method} {path}: {type(exc).__name__}")
                reply = None
            elapsed = time.perf_counter() - started
            if reply is not None:
                self.stats.record(op, elapsed, str(reply.status))
                if reply.status == 503:
                    self._check_unavailable(method, path, reply)
                if reply.status >= 500 and reply.status != 503:
                    self.stats.problem(f"{method} {path} -> {reply.status}: {reply.body[:300]!r}")
                if reply.status not in RETRYABLE:
                    if replayable and reply.status in ok and reply.status < 300 \
                            and self.rng.random() < self.behaviour.replay_p:
                        await self._replay(op, method, path, hdrs, body, timeout, reply)
                    return reply
            if time.monotonic() - began > self.behaviour.give_up_s:
                raise Unavailable(f"{method} {path} kept failing for {self.behaviour.give_up_s}s")
            if self.stop_at():
                raise Stopped
            await asyncio.sleep(self._backoff(attempt, reply))

    async def _replay(self, op: str, method: str, path: str, hdrs: dict[str, str], body: BodyFactory | None,
                      limit_s: float, first: Reply) -> None:
        started = time.perf_counter()
        try:
            again = await self._once(op, method, path, hdrs, body, limit_s)
        except (TimeoutError, aiohttp.ClientError):
            self.stats.record(op + " (replay)", None, "conn_error")
            return
        self.stats.record(op + " (replay)", time.perf_counter() - started, str(again.status))
        if again.status >= 500 and again.status != 503:
            self.stats.problem(f"replayed {method} {path} -> {again.status}: {again.body[:300]!r}")

    def _check_unavailable(self, method: str, path: str, reply: Reply) -> None:
        ctype = reply.headers.get("content-type", "")
        if "application/problem+json" not in ctype:
            self.stats.record("503 shape", None, "not_problem_json")
            self.stats.problem(f"{method} {path} -> 503 with content-type {ctype!r}")
        if "retry-after" not in reply.headers:
            self.stats.record("503 shape", None, "no_retry_after")
            self.stats.problem(f"{method} {path} -> 503 without Retry-After")

    def _backoff(self, attempt: int, reply: Reply | None) -> float:
        if reply is not None and "retry-after" in reply.headers:
            try:
                hint: float = float(reply.headers["retry-after"])
            except ValueError:
                hint = 1.0
            return min(hint, 3.0) * self.rng.uniform(0.5, 1.0)
        return min(0.2 * 2.0 ** min(attempt, 8), 3.0) * self.rng.uniform(0.5, 1.0)


# --- photos -----------------------------------------------------------------------------------------


class PhotoMaker:
    """A few phone-sized JPEGs made once; each upload gets unique bytes through a JPEG comment segment."""

    def __init__(self, sizes_mb: tuple[float, ...] = (1.2, 2.5, 5.0), seed: int = 7) -> None:
        self.bases: list[bytes] = []
        rng = np.random.default_rng(seed)
        for target in sizes_mb:
            # Noise compresses badly, like a phone's high-quality photo; width grows with the target size.
            side = int(1150 * target ** 0.5)
            pixels = rng.integers(0, 255, size=(int(side * 0.75), side, 3), dtype=np.uint8)
            out = io.BytesIO()
            Image.fromarray(pixels).save(out, "JPEG", quality=90)
            self.bases.append(out.getvalue())

    def make(self, rng: random.Random, small: bool = False) -> bytes:
        base = self.bases[0] if small else rng.choice(self.bases)
        marker = uuid.uuid4().bytes * 4
        segment = b"\xff\xfe" + (len(marker) + 2).to_bytes(2, "big") + marker
        return base[:2] + segment + base[2:]


# --- the personas -----------------------------------------------------------------------------------


@dataclass
class Account:
    username: str
    password: str
    role: str
    user_id: str = ""
    home_branch_id: str | None = None
    branch_id: str | None = None


@dataclass
class World:
    """What the personas share: branches, the clock of the run, the photo maker and the ledger."""

    http_base: str
    branches: list[dict[str, Any]]
    photos: PhotoMaker
    ledger: Ledger
    stats: Stats
    behaviour: Behaviour
    deadline: float
    think_s: tuple[float, float] = (0.2, 1.5)
    stop_event: asyncio.Event = field(default_factory=asyncio.Event)

    def over(self) -> bool:
        return self.stop_event.is_set() or time.monotonic() >= self.deadline


class Persona:
    def __init__(self, world: World, account: Account, session: aiohttp.ClientSession, seed: int) -> None:
        self.world = world
        self.account = account
        self.rng = random.Random(seed)
        self.http = Http(session, world.http_base, world.stats, world.behaviour, self.rng, world.over)
        self.token: str | None = None

    async def login(self) -> None:
        creds = {"username": self.account.username, "password": self.account.password}
        reply = await self.http.call("login", "POST", f"{API}/auth/login", body=lambda: creds, replayable=False)
        if reply.status != 200:
            raise RuntimeError(f"login {self.account.username} -> {reply.status} {reply.body[:200]!r}")
        body = reply.json()
        self.token = body["access_token"]
        self.account.user_id = body["user"]["id"]

    async def api(self, op: str, method: str, path: str, **kw: Any) -> Reply:
        if self.token is None:
            await self.login()
        reply = await self.http.call(op, method, path, token=self.token, **kw)
        if reply.status == 401:  # expired access token: log in again once
            await self.login()
            reply = await self.http.call(op, method, path, token=self.token, **kw)
        return reply

    async def think(self) -> None:
        low, high = self.world.think_s
        await asyncio.sleep(self.rng.uniform(low, high))

    async def run(self) -> None:
        await asyncio.sleep(self.rng.uniform(0, 5))  # people do not all open the app in the same second
        while not self.world.over():
            try:
                await self.step()
            except Stopped:
                return
            except Unavailable as exc:
                self.world.stats.record("gave_up", None, "unavailable")
                self.world.stats.problem(str(exc))
            await self.think()

    async def step(self) -> None:
        raise NotImplementedError


def _unexpected(stats: Stats, what: str, reply: Reply) -> None:
    stats.record("unexpected", None, f"{what}:{reply.status}")
    stats.problem(f"{what} -> {reply.status}: {reply.body[:300]!r}")


class Phone(Persona):
    """An inspector or mystery shopper doing one visit per step."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.checklists: dict[str, tuple[str, dict[str, Any]]] = {}  # key -> (etag, body)

    @property
    def checklist_key(self) -> str:
        return "mystery-visit" if self.account.role == "mystery_shopper" else "branch-service"

    async def checklist(self, key: str) -> dict[str, Any]:
        cached = self.checklists.get(key)
        headers = {"If-None-Match": cached[0]} if cached else {}
        reply = await self.api("checklist get", "GET", f"{API}/checklists/{key}?lang=en", headers=headers)
        if reply.status == 304 and cached:
            return cached[1]
        if reply.status != 200:
            _unexpected(self.world.stats, "checklist", reply)
            raise Unavailable("no checklist")
        body = reply.json()
        self.checklists[key] = (reply.headers.get("etag", ""), body)
        return dict(body)

    async def step(self) -> None:
        stats, ledger = self.world.stats, self.world.ledger
        reply = await self.api("assignments mine", "GET", f"{API}/assignments?mine=true&status=planned&limit=20")
        assignments = reply.json()["items"] if reply.status == 200 else []
        key = self.checklist_key
        checklist = await self.checklist(key)
        assignment = next((a for a in assignments if a.get("checklist_key", key) == key), None)
        if assignment is not None:
            branch = next(b for b in self.world.branches if b["id"] == assignment["branch_id"])
            start: dict[str, Any] = {"assignment_id": assignment["id"], "checklist_key": key}
        else:
            choices = [b for b in self.world.branches if b["id"] != self.account.home_branch_id]
            branch = self.rng.choice(choices)
            start = {"branch_id": branch["id"], "checklist_key": key}
        start["started_at"] = datetime.now(UTC).isoformat()
        loc = branch.get("location") or {}
        if loc:
            start["location"] = {"lat": loc["lat"] + self.rng.uniform(-3e-4, 3e-4),
                                 "lon": loc["lon"] + self.rng.uniform(-3e-4, 3e-4)}
        audit_id = str(uuid.uuid4())
        reply = await self.api("audit start", "PUT", f"{API}/audits/{audit_id}", body=lambda: start,
                               ok=(200, 201))
        if reply.status not in (200, 201):
            if reply.status == 409 and assignment is not None:
                return  # someone (or our own dropped attempt) took the assignment: normal under retries
            _unexpected(stats, "audit start", reply)
            return
        ledger.started_audits.add(audit_id)
        answers = self.answers(checklist)
        self.rng.shuffle(answers)
        progress: dict[str, Any] = {}
        batch_size = max(1, len(answers) // self.rng.randint(2, 4))
        for i in range(0, len(answers), batch_size):
            batch = answers[i:i + batch_size]
            progress = await self.patch(audit_id, batch) or progress
            await asyncio.sleep(self.rng.uniform(0.05, 0.3))
        for _ in range(3):
            if not progress:
                return
            for item_id in progress.get("missing_photos", []):
                if not await self.upload(audit_id, item_id):
                    return
            missing = [a for a in self.answers(checklist, only=set(progress.get("missing_items", [])))]
            if missing:
                progress = await self.patch(audit_id, missing) or progress
                continue
            break
        reply = await self.api("audit submit", "POST", f"{API}/audits/{audit_id}/submit")
        if reply.status == 200:
            ledger.submitted_audits.add(audit_id)
        else:
            _unexpected(stats, "audit submit", reply)

    async def patch(self, audit_id: str, batch: list[dict[str, Any]]) -> dict[str, Any] | None:
        reply = await self.api("answers patch", "PATCH", f"{API}/audits/{audit_id}/answers", body=lambda: batch)
        if reply.status != 200:
            _unexpected(self.world.stats, "answers patch", reply)
            return None
        self.world.ledger.answered.setdefault(audit_id, set()).update(a["item_id"] for a in batch)
        return dict(reply.json()["progress"])

    async def upload(self, audit_id: str, item_id: str) -> bool:
        data = self.world.photos.make(self.rng)

        def form() -> aiohttp.FormData:
            f = aiohttp.FormData()
            f.add_field("item_id", item_id)
            f.add_field("file", data, filename="IMG.jpg", content_type="image/jpeg")
            return f

        reply = await self.api("photo upload", "POST", f"{API}/audits/{audit_id}/photos", body=form,
                               ok=(200, 201), upload=True)
        if reply.status not in (200, 201):
            _unexpected(self.world.stats, "photo upload", reply)
            return False
        body = reply.json()
        self.world.ledger.photos[body["id"]] = body["sha256"]
        return True

    def answers(self, checklist: dict[str, Any], only: set[str] | None = None) -> list[dict[str, Any]]:
        """Answers to every item (about one in twelve failing), honouring simple show_if conditions."""
        now = datetime.now(UTC).isoformat()
        values: dict[str, Any] = {}
        out = []
        for section in checklist["sections"]:
            for item in section["items"]:
                cond = item.get("show_if")
                hidden = bool(cond) and "item" in cond and "equals" in cond \
                    and values.get(cond["item"]) != cond["equals"]
                if hidden and (only is None or item["id"] not in only):
                    continue
                value = self.value_for(item, fail=self.rng.random() < 0.08)
                values[item["id"]] = value
                if only is not None and item["id"] not in only:
                    continue
                out.append({"item_id": item["id"], "value": value, "answered_at": now})
        return out

    @staticmethod
    def value_for(item: dict[str, Any], fail: bool) -> Any:
        kind = item["type"]
        if kind == "yes_no":
            return not fail
        if kind == "rating":
            scale = item.get("scale") or {"min": 1, "max": 5}
            return scale["min"] if fail else scale["max"]
        if kind in ("number", "timer"):
            rule = str(item.get("pass_rule") or "<= 10")
            match = re.search(r"(<=|>=|<|>|==)\s*(-?\d+(?:\.\d+)?)", rule)
            limit = float(match.group(2)) if match else 10.0
            lower_passes = match is None or match.group(1) in ("<=", "<")
            good, bad = (limit / 2, limit * 2 + 1) if lower_passes else (limit * 2 + 1, limit / 2)
            return bad if fail else good
        if kind in ("single_choice", "multi_choice"):
            options = item.get("options") or []
            passing = [o["id"] for o in options if o.get("passing", True)] or [options[0]["id"]]
            failing = [o["id"] for o in options if not o.get("passing", True)]
            chosen = failing[0] if fail and failing else passing[0]
            return chosen if kind == "single_choice" else [chosen]
        if kind == "photo":
            return None
        return "load test note"


class BranchHead(Persona):
    """Works through the branch's open rectifications: an 'after' photo, then submit."""

    async def step(self) -> None:
        stats, ledger = self.world.stats, self.world.ledger
        await self.api("notifications list", "GET", f"{API}/notifications?unread=true&limit=20")
        reply = await self.api("rectifications list", "GET", f"{API}/rectifications?status=open&limit=20")
        if reply.status != 200:
            _unexpected(stats, "rectifications list", reply)
            return
        items = reply.json()["items"]
        if self.rng.random() < 0.3:
            await self.api("audits list (branch)", "GET", f"{API}/audits?limit=20")
        for rect in items[: self.rng.randint(1, 2)]:
            await self.api("rectification get", "GET", f"{API}/rectifications/{rect['id']}")
            data = self.world.photos.make(self.rng, small=True)

            def form(data: bytes = data) -> aiohttp.FormData:
                f = aiohttp.FormData()
                f.add_field("file", data, filename="after.jpg", content_type="image/jpeg")
                return f

            up = await self.api("rect photo upload", "POST", f"{API}/rectifications/{rect['id']}/photos",
                                body=form, ok=(200, 201), upload=True)
            if up.status not in (200, 201):
                if up.status != 409:  # submitted meanwhile by a colleague
                    _unexpected(stats, "rect photo upload", up)
                continue
            ledger.rectification_photos[up.json()["id"]] = up.json()["sha256"]
            sub = await self.api("rectification submit", "POST", f"{API}/rectifications/{rect['id']}/submit",
                                 body=lambda: {"note": "fixed during the load run"})
            if sub.status == 200:
                ledger.submitted_rectifications.add(rect["id"])
            elif sub.status == 409:
                # A replay or a dropped first attempt may have submitted it already.
                got = await self.api("rectification get", "GET", f"{API}/rectifications/{rect['id']}")
                if got.status == 200 and got.json()["status"] in ("submitted", "verified"):
                    ledger.submitted_rectifications.add(rect["id"])
            else:
                _unexpected(stats, "rectification submit", sub)


class Compliance(Persona):
    """Releases submitted audits, verifies fixes, reads history, scorecards, exports and the trail."""

    async def step(self) -> None:
        stats, ledger = self.world.stats, self.world.ledger
        reply = await self.api("audits list submitted", "GET", f"{API}/audits?status=submitted&limit=20")
        if reply.status == 200:
            for audit in reply.json()["items"][:5]:
                rel = await self.api("audit release", "POST", f"{API}/audits/{audit['id']}/release")
                if rel.status == 200:
                    ledger.released_audits.add(audit["id"])
                elif rel.status == 409:
                    got = await self.api("audit get", "GET", f"{API}/audits/{audit['id']}")
                    if got.status == 200 and got.json()["status"] == "released":
                        ledger.released_audits.add(audit["id"])
                else:
                    _unexpected(stats, "audit release", rel)
        reply = await self.api("rectifications submitted", "GET", f"{API}/rectifications?status=submitted&limit=10")
        if reply.status == 200:
            for rect in reply.json()["items"][:3]:
                ver = await self.api("rectification verify", "POST", f"{API}/rectifications/{rect['id']}/verify",
                                     body=lambda: {"comment": "checked"})
                if ver.status == 200:
                    ledger.verified_rectifications.add(rect["id"])
                elif ver.status != 409:
                    _unexpected(stats, "rectification verify", ver)
        since = (datetime.now(UTC) - timedelta(days=31)).strftime("%Y-%m-%dT%H:%M:%SZ")
        reads: list[tuple[str, str]] = [
            ("audits history", f"{API}/audits?from={since}&limit=50"),
            ("scorecard", f"{API}/reports/scorecard?group_by=branch"),
            ("scorecard by section", f"{API}/reports/scorecard?group_by=section"),
            ("rectification report", f"{API}/reports/rectifications?group_by=region"),
            ("export csv", f"{API}/exports/audits.csv?from={since}"),
            ("trail", f"{API}/trail?limit=50"),
        ]
        for op, path in self.rng.sample(reads, 3):
            got = await self.api(op, "GET", path)
            if got.status != 200:
                _unexpected(stats, op, got)


# --- running them -----------------------------------------------------------------------------------


async def run_personas(world: World, phones: list[Account], heads: list[Account], reviewers: list[Account],
                       seed: int = 1) -> None:
    """All personas until the world's deadline; each its own session (its own connections)."""
    sessions: list[aiohttp.ClientSession] = []
    tasks: list[Awaitable[None]] = []
    kinds: list[tuple[type[Persona], list[Account]]] = [(Phone, phones), (BranchHead, heads), (Compliance, reviewers)]
    n = 0
    for cls, accounts in kinds:
        for account in accounts:
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4))
            sessions.append(session)
            tasks.append(cls(world, account, session, seed * 1000 + n).run())
            n += 1
    try:
        await asyncio.gather(*tasks)
    finally:
        for session in sessions:
            await session.close()


# --- the database check -----------------------------------------------------------------------------


def _duplicates(db: Any, collection: str, keys: list[str], match: dict[str, Any] | None = None) -> int:
    group = {k.replace(".", "_"): f"${k}" for k in keys}
    pipeline: list[dict[str, Any]] = [
        {"$match": {**(match or {}), **{k: {"$exists": True, "$ne": None} for k in keys}}},
        {"$group": {"_id": group, "n": {"$sum": 1}}},
        {"$match": {"n": {"$gt": 1}}},
    ]
    return sum(int(d["n"]) - 1 for d in db[collection].aggregate(pipeline))


def consistency(db_port: int, ledger: Ledger, database: str = DATABASE_NAME) -> dict[str, Any]:
    """Every acknowledged write is stored, once; no unique key holds two documents."""
    client: MongoClient[dict[str, Any]] = MongoClient(
        f"mongodb://127.0.0.1:{db_port}/?directConnection=true", serverSelectionTimeoutMS=20000)
    try:
        db = client[database]
        lost: dict[str, list[str]] = {}

        def missing(name: str, ids: set[str], collection: str, extra: dict[str, Any] | None = None) -> None:
            if not ids:
                lost[name] = []
                return
            found = {d["_id"] for d in db[collection].find({"_id": {"$in": sorted(ids)}, **(extra or {})},
                                                           {"_id": 1})}
            lost[name] = sorted(ids - found)

        missing("audits_started", ledger.started_audits, "audits")
        missing("audits_submitted", ledger.submitted_audits, "audits",
                {"status": {"$in": ["submitted", "released"]}})
        missing("audits_released", ledger.released_audits, "audits", {"status": "released"})
        missing("audit_photos", set(ledger.photos), "photos")
        missing("rectification_photos", set(ledger.rectification_photos), "photos")
        missing("rectifications_submitted", ledger.submitted_rectifications, "rectifications",
                {"status": {"$in": ["submitted", "verified"]}})
        missing("rectifications_verified", ledger.verified_rectifications, "rectifications", {"status": "verified"})
        lost_answers = []
        for audit in db.audits.find({"_id": {"$in": sorted(ledger.answered)}}, {"answers": 1}):
            stored = set((audit.get("answers") or {}).keys())
            gone = ledger.answered[audit["_id"]] - stored
            if gone:
                lost_answers.append(f"{audit['_id']}: {sorted(gone)}")
        lost["answers"] = lost_answers
        stored_sha = {d["_id"]: d.get("sha256") for d in
                      db.photos.find({"_id": {"$in": sorted(set(ledger.photos) | set(ledger.rectification_photos))}},
                                     {"sha256": 1})}
        wrong_sha = [pid for pid, sha in {**ledger.photos, **ledger.rectification_photos}.items()
                     if pid in stored_sha and stored_sha[pid] != sha]
        photo_files = {d["_id"] for d in db["photos.files"].find({}, {"_id": 1})}
        without_bytes = [pid for pid in stored_sha
                         if (doc := db.photos.find_one({"_id": pid}, {"gridfs_id": 1})) is not None
                         and doc.get("gridfs_id") not in photo_files]
        duplicates = {
            "audits_per_assignment": _duplicates(db, "audits", ["assignment_id"]),
            "audit_start_events": _duplicates(db, "events", ["subject.id"], {"type": "audit.started"}),
            "audit_submitted_events": _duplicates(db, "events", ["subject.id"], {"type": "audit.submitted"}),
            "findings_per_audit_item": _duplicates(db, "findings", ["audit_id", "item_id"]),
            "photos_per_owner_and_sha256": _duplicates(db, "photos", ["owner_key", "sha256", "item_id"]),
            "rectifications_per_finding": _duplicates(db, "rectifications", ["finding_id"]),
            "reminders_sent": _duplicates(db, "events", ["payload.rectification_id", "payload.step",
                                                         "payload.level"], {"type": "reminder.sent"}),
            "webhook_deliveries": _duplicates(db, "webhook_deliveries", ["subscription_id", "event_id"]),
        }
        stored_counts = {
            "audits": db.audits.count_documents({}),
            "audits_submitted_or_released": db.audits.count_documents({"status": {"$in": ["submitted", "released"]}}),
            "photos": db.photos.count_documents({}),
            "rectifications": db.rectifications.count_documents({}),
            "rectifications_submitted_or_verified": db.rectifications.count_documents(
                {"status": {"$in": ["submitted", "verified"]}}),
            "webhook_deliveries": db.webhook_deliveries.count_documents({}),
            "events": db.events.count_documents({}),
        }
        return {
            "acknowledged": ledger.counts(),
            "stored": stored_counts,
            "lost": {k: len(v) for k, v in lost.items()},
            "lost_examples": {k: v[:5] for k, v in lost.items() if v},
            "photo_sha256_mismatch": wrong_sha[:5],
            "photos_without_bytes": without_bytes[:5],
            "duplicates": duplicates,
            "ok": not any(lost.values()) and not wrong_sha and not without_bytes and not any(duplicates.values()),
        }
    finally:
        client.close()


def consistency_table(check: dict[str, Any]) -> str:
    lines = ["acknowledged vs stored:"]
    for key, value in check["acknowledged"].items():
        lost = check["lost"].get(key.replace("answer_batches_items", "answers"), 0)
        lines.append(f"  {key:<32}{value:>7}   lost: {lost}")
    lines.append("stored in the database: " + ", ".join(f"{k}={v}" for k, v in check["stored"].items()))
    lines.append("duplicates by unique key: " + ", ".join(f"{k}={v}" for k, v in check["duplicates"].items()))
    if check["lost_examples"]:
        lines.append(f"LOST: {check['lost_examples']}")
    if check["photo_sha256_mismatch"] or check["photos_without_bytes"]:
        lines.append(f"photo problems: sha {check['photo_sha256_mismatch']} bytes {check['photos_without_bytes']}")
    lines.append("consistency: " + ("OK" if check["ok"] else "FAILED"))
    return "\n".join(lines)
