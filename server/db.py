"""MongoDB connection, durable write concern, and idempotent index creation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pymongo
from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    ExecutionTimeout,
    NetworkTimeout,
    PyMongoError,
    ServerSelectionTimeoutError,
    WTimeoutError,
)

Doc = dict[str, Any]
Database = AsyncDatabase[Doc]
Client = AsyncMongoClient[Doc]

# Errors that mean "the database is not reachable right now": answered 503, never 500.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    ConnectionFailure,
    AutoReconnect,
    NetworkTimeout,
    ServerSelectionTimeoutError,
    ExecutionTimeout,
    WTimeoutError,
)


def is_unavailable(exc: BaseException) -> bool:
    """Whether an error means the database cannot answer now (503), as opposed to a bug (500)."""
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return True
    return isinstance(exc, PyMongoError) and bool(getattr(exc, "timeout", False))


def connect(uri: str, *, timeout_ms: int = 2000, socket_timeout_ms: int | None = 5000,
            max_pool_size: int = 100, heartbeat_timeout_ms: int | None = None) -> Client:
    """A client whose every write is majority-acknowledged and journaled (survives a crash).

    The socket timeout bounds a request whose database froze mid-operation (measured: without it, requests
    hung for the whole of a 30 s SIGSTOP); it then fails with NetworkTimeout and the API answers 503.
    One-shot commands pass None, since a rebuild's aggregation may legitimately run longer.

    The driver's monitor uses connectTimeoutMS as the timeout of its `hello`. SecantusDB answers no `hello`
    while it materialises a large find, and a missed heartbeat cancels every operation in flight (seen:
    the aggregate rebuild at 200,000 audits), so long-running commands pass a larger `heartbeat_timeout_ms`."""
    return AsyncMongoClient(
        uri,
        w="majority",
        journal=True,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=heartbeat_timeout_ms or timeout_ms,
        socketTimeoutMS=socket_timeout_ms,
        retryWrites=True,
        maxPoolSize=max_pool_size,
        appname="branch-audit",
    )


def all_indexes() -> dict[str, list[IndexModel]]:
    """Every index the storage modules declare, by collection."""
    from server.storage import registry

    return registry.collect()


async def ensure_indexes(db: Database, indexes: dict[str, Iterable[IndexModel]] | None = None) -> None:
    """Create declared indexes; create_indexes is a no-op for ones that already exist."""
    for collection, models in (indexes or all_indexes()).items():
        models = list(models)
        if models:
            await db[collection].create_indexes(models)


async def ping(client: Client) -> bool:
    try:
        # Readiness must answer fast even when the database is frozen rather than gone.
        with pymongo.timeout(1.5):
            await client.admin.command("ping")
    except UNAVAILABLE_ERRORS:
        return False
    return True
