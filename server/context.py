"""The service's dependencies, wired once per process, and the unit of work that writes
a change of state together with its events and its trail entries in one transaction."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import time as clock_time
from typing import TYPE_CHECKING, Any, TypeVar

import pymongo
from pydantic import BaseModel
from pymongo.asynchronous.client_session import AsyncClientSession

from schemas.events import event_type_of
from server.clock import Clock
from server.db import Client, Database, Doc
from server.domain.audit_access import pseudonym_key
from server.domain.deadlines import parse_local_time
from server.domain.reminders import ReminderPolicy
from server.http.metrics import Metrics
from server.security import Passwords
from server.sessions import SessionReaper, cut_off_by_network
from server.settings import Settings
from server.storage import outbox
from server.storage import trail as trail_store

if TYPE_CHECKING:
    from server.auth_state import AuthState
    from server.checklists.serving import Prepared
    from server.http.api import Operation
    from server.jobs.sequencer import Sequenced
    from server.notify.channels import Channel
    from server.notify.stream import Notifier

T = TypeVar("T")

log = logging.getLogger("branch_audit.transactions")
# A transaction slower than this (or retried) is logged, so contention shows in the server log.
SLOW_TRANSACTION_S = 2.0


@dataclass
class ActorInfo:
    """Who is acting, and from where, for events and the trail."""

    user_id: str | None
    role: str | None
    request_id: str | None = None
    client_address: str | None = None
    kind: str = "user"

    @classmethod
    def system(cls, name: str = "system") -> ActorInfo:
        return cls(user_id=None, role=name, kind="system")


@dataclass
class Shared:
    """What one process keeps for its whole life, named: each is made on first use by the module that owns
    it (the image pool by server.images.executor, the notifier by server.notify.stream, ...)."""

    mongodb_uri: str = ""
    image_pool: ThreadPoolExecutor | None = None
    auth: AuthState | None = None
    notifier: Notifier | None = None
    # Tests and benchmarks may set their own channels.
    notify_channels: list[Channel] | None = None
    events_sequenced: asyncio.Event | None = None
    sequenced: Sequenced | None = None
    prepared_checklists: dict[tuple[str, int], Prepared] = field(default_factory=dict)
    current_checklists: dict[str, tuple[float, int]] = field(default_factory=dict)
    operations: list[Operation] = field(default_factory=list)


@dataclass
class Services:
    """Everything a handler or a job needs; built by bootstrap(), swapped piecemeal in tests."""

    settings: Settings
    client: Client
    db: Database
    clock: Clock
    jwt_secret: str
    passwords: Passwords = field(default_factory=Passwords)
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    # Set by the dispatcher so a commit wakes it at once instead of at its next poll.
    outbox_signal: asyncio.Event = field(default_factory=asyncio.Event)
    metrics: Metrics = field(default_factory=Metrics)
    # False for background jobs: their batches may take long on a loaded database and must not give up.
    bounded: bool = True
    # Shared with the background-job copy: kills server sessions whose transaction a network failure cut off.
    reaper: SessionReaper = field(default_factory=SessionReaper)
    openapi_bytes: bytes = b"{}"
    # Kept for the life of the process and shared with the background-job copy (dataclasses.replace).
    shared: Shared = field(default_factory=lambda: Shared())

    def close(self) -> None:
        """Release what the process holds besides the database client: the image workers."""
        pool, self.shared.image_pool = self.shared.image_pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    @functools.cached_property
    def pseudonym_key(self) -> bytes:
        """The key of the stable pseudonyms branch roles see instead of a mystery shopper (server secret)."""
        return pseudonym_key(self.jwt_secret)

    @functools.cached_property
    def reminder_policy(self) -> ReminderPolicy:
        """The reminder and escalation schedule, from the settings."""
        s = self.settings
        return ReminderPolicy.from_text(
            before_hours=s.reminder_before_hours,
            overdue_every_hours=s.reminder_overdue_every_hours,
            regional_after_hours=s.escalate_regional_after_hours,
            compliance_after_hours=s.escalate_compliance_after_hours,
            quiet_hours=s.quiet_hours,
            digest_at=s.digest_local_time,
        )

    @functools.cached_property
    def due_end_of_day(self) -> clock_time:
        """The local time at which a deadline's day ends."""
        return parse_local_time(self.settings.due_end_of_day)

    async def transact(self, actor: ActorInfo, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """Run `work` in a transaction with its events and trail entries (retried on transient conflicts)."""
        attempts = 0
        marked = False  # whether the committed attempt left pending markers for the sequencer
        started = time.monotonic()
        async with self.client.start_session() as session:

            async def attempt(s: AsyncClientSession) -> T:
                nonlocal attempts, marked
                attempts += 1
                uow = UnitOfWork(self, s, actor)
                result = await work(uow)
                await uow.flush()
                marked = bool(uow.events or uow.trail)
                return result

            # with_transaction retries transient errors for up to 120 s; a request must give up sooner (seen:
            # requests hanging through a frozen database), so its budget bounds the retries (503 after it).
            budget = self.settings.db_transaction_budget_s if self.bounded else 0
            try:
                with pymongo.timeout(budget or None):
                    result = await session.with_transaction(attempt)
            except Exception as exc:
                if cut_off_by_network(exc):
                    # The server may still hold this transaction (and its documents) for 60 s.
                    self.reaper.kill_later(self.client, session.session_id)
                raise
            finally:
                self._observe_transaction(work, actor, attempts, time.monotonic() - started)
        if marked:  # a commit without events or trail (most event handlers') gives the sequencer nothing to do
            self.outbox_signal.set()
        return result

    def _observe_transaction(self, work: Callable[..., Any], actor: ActorInfo, attempts: int, seconds: float) -> None:
        if attempts > 1:
            self.metrics.counters["transaction_retries_total"] += attempts - 1
        if attempts > 1 or seconds >= SLOW_TRANSACTION_S:
            self.metrics.counters["transactions_slow_or_retried_total"] += 1
            log.warning(
                "transaction %s (%s) took %.2f s in %d attempt(s)",
                getattr(work, "__qualname__", "?"), actor.role, seconds, attempts,
            )


class UnitOfWork:
    """One transaction: state writes go through `session`; `emit` and `record` are written with them."""

    def __init__(self, services: Services, session: AsyncClientSession, actor: ActorInfo) -> None:
        self.services = services
        self.session = session
        self.actor = actor
        self.db = services.db
        self.now = services.clock.now()
        self.events: list[Doc] = []
        self.trail: list[Doc] = []

    def emit(self, payload: BaseModel, *, subject_type: str, subject_id: str, **subject_ids: str | None) -> str:
        """Queue an event for the outbox; returns its id."""
        name, version = event_type_of(payload)
        event_id = str(uuid.uuid4())
        ids = {k: v for k, v in subject_ids.items() if v is not None}
        ids.setdefault(f"{subject_type}_id", subject_id)
        self.events.append(
            {
                "_id": event_id,
                "type": name,
                "schema_version": version,
                "occurred_at": self.now,
                "actor": {"id": self.actor.user_id, "role": self.actor.role, "kind": self.actor.kind},
                "subject": {"type": subject_type, "id": subject_id},
                "subject_ids": ids,
                "payload": payload.model_dump(mode="json"),
                # Several events of one transaction share occurred_at; this keeps their emission order.
                "emit_index": len(self.events),
            }
        )
        return event_id

    def record(self, action: str, entity_type: str, entity_id: str, summary: dict[str, Any] | None = None,
               **related: str | None) -> None:
        """Queue a trail entry (`noun.verb`) describing this change."""
        self.trail.append(
            {
                "_id": str(uuid.uuid4()),
                "at": self.now,
                "actor_id": self.actor.user_id,
                "actor_role": self.actor.role,
                "action": action,
                "entity_type": entity_type,
                "entity_id": entity_id,
                "related_ids": [v for v in related.values() if v],
                "summary": summary or {},
                "request_id": self.actor.request_id,
                "client_address": self.actor.client_address,
            }
        )

    async def flush(self) -> None:
        """Write the queued events and trail entries, each kind with one pending marker for the
        sequencer: the markers, not flags on the documents, say what waits (server.storage.outbox)."""
        at = self.services.clock.now()
        if self.events:
            await outbox.write_events(self.db, self.events, at, self.session, self.services.instance_id)
        if self.trail:
            await trail_store.write_entries(self.db, self.trail, at, self.session, self.services.instance_id)
