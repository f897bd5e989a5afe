"""Schemathesis hooks (SCHEMATHESIS_HOOKS=tests.fuzz_hooks): serializers for media types it lacks, and a short
read of the notification stream."""

from __future__ import annotations

from typing import Any

import schemathesis

NOTIFICATION_STREAM = "/api/v1/notifications/stream"
# The stream answers its headers and a `retry:` line at once, then stays open until the client leaves (a heartbeat
# every 15 s). Schemathesis reads an event stream until its request timeout passes, checked only when a chunk
# arrives: each generated call held a worker for 30 s and ate the run's whole time budget. A read that goes
# quiet for a second ends it; what arrived is what the checks see.
STREAM_READ_SECONDS = 1.0


@schemathesis.serializer("application/offset+octet-stream")
def tus_chunk(ctx: Any, value: Any) -> bytes:
    """tus PATCH bodies are raw bytes; generated values of any shape become bytes."""
    if isinstance(value, bytes):
        return value
    return str(value).encode()


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if case.operation.path == NOTIFICATION_STREAM:
        kwargs["timeout"] = STREAM_READ_SECONDS
