"""Ending sessions: a user's logins (`end_session`, `end_sessions_of_user`), and the server-side transactions
that a network failure cut off from their client.

When the database stops answering mid-transaction (a pause, an overloaded host, a dropped link), the
client gives up, but the transaction stays open on the server: closing the connection does not abort it
(drivers may send a transaction's statements over different connections), and both mongod and SecantusDB
reap it only after 60 s idle. Until then every transaction touching the same documents fails with
WriteConflict, so after an outage one rectification or audit would answer 503 for a minute (seen in
`make faults`). The driver discards such a session (it marks it dirty), so nothing will use it again;
this kills it on the server, retrying until the database answers."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pymongo
from pymongo.errors import ConnectionFailure, PyMongoError

from server.db import Client, is_unavailable
from server.storage import auth as auth_store

if TYPE_CHECKING:
    from server.context import UnitOfWork

log = logging.getLogger("branch_audit.sessions")


# --- users' logins ----------------------------------------------------------------------------------


async def end_sessions_of_user(uow: UnitOfWork, user_id: str, reason: str, *,
                               keep_session: str | None = None) -> int:
    """End every login of a user inside the caller's transaction (deactivation, a role or scope change,
    a password change or reset); returns how many ended. Their refresh tokens stop at once and their access
    tokens at their next request, on every instance: run the command within
    `server.auth_state.revocations_reach_every_instance` (every HTTP request is), which waits, after the
    commit, until every instance has forgotten what it cached."""
    sessions = await auth_store.open_sessions_of(uow.db, user_id, uow.session)
    ended = [s["_id"] for s in sessions if s["_id"] != keep_session]
    await _revoke(uow, user_id, ended, reason)
    return len(ended)


async def end_session(uow: UnitOfWork, user_id: str, session_id: str, reason: str) -> None:
    """End one login (logout, a replayed refresh token) inside the caller's transaction."""
    await _revoke(uow, user_id, [session_id], reason)


async def _revoke(uow: UnitOfWork, user_id: str, session_ids: list[str], reason: str) -> None:
    from server.auth_state import note_revocation

    # The epoch moves even when no session was open: the user's other changes in this transaction
    # (deactivation, a new role) must reach every instance's cache before the caller is answered.
    note_revocation(await auth_store.bump_revocation_epoch(uow.db, uow.session))
    if not session_ids:
        return
    await auth_store.revoke_sessions(uow.db, session_ids, user_id, uow.now, reason,
                                     uow.services.settings.access_token_ttl_s, uow.session)
    uow.record("session.end", "user", user_id, {"reason": reason, "sessions": len(session_ids)},
               session_id=session_ids[0] if len(session_ids) == 1 else None)


# --- database sessions cut off mid-transaction --------------------------------------------------------

# Past this the server has reaped the transaction by itself (60 s idle), outages included.
GIVE_UP_AFTER_S = 180.0
ATTEMPT_TIMEOUT_S = 2.0
MAX_RETRY_DELAY_S = 2.0


def cut_off_by_network(exc: BaseException) -> bool:
    """Whether a network failure is anywhere in this error's chain (the driver then marks the session dirty)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ConnectionFailure):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class SessionReaper:
    """Background `killSessions` calls, one task per cut-off session, cancelled at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self.killed = 0

    def kill_later(self, client: Client, session_id: Mapping[str, Any]) -> None:
        # A fresh context: the caller's request deadline (a context variable) must not bound the retries.
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._kill(client, dict(session_id)), context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def _kill(self, client: Client, session_id: dict[str, Any]) -> None:
        deadline = time.monotonic() + GIVE_UP_AFTER_S
        delay = 0.1
        while True:
            try:
                with pymongo.timeout(ATTEMPT_TIMEOUT_S):
                    await client.admin.command("killSessions", [session_id])
                self.killed += 1
                log.warning("killed a session cut off mid-transaction (its documents are free again)")
                return
            except PyMongoError as exc:
                if not is_unavailable(exc) or time.monotonic() > deadline:
                    log.warning("could not kill a cut-off session: %s", exc)
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY_S)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def release_orphaned_transactions(uri: str) -> None:
    """After a worker died (SIGKILL, OOM), abort every open transaction so the dead worker's stop holding
    their documents. Measured: a thumbnail handler retried 155 times over 88 s against a killed worker's
    transaction. Only for the embedded database, where every client is one of our workers on this host:
    the live workers' transactions abort too and are retried (TransientTransactionError), while on a shared
    mongod `killAllSessions` would also end other hosts' cursors (their exports)."""
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        uri, serverSelectionTimeoutMS=2000, connectTimeoutMS=2000, socketTimeoutMS=5000
    )
    try:
        client.admin.command("killAllSessions", [])
        log.warning("a worker died: open transactions aborted, so its documents are free again")
    except PyMongoError as exc:
        log.warning("a worker died; could not abort its transactions: %s", exc)
    finally:
        client.close()
