"""Schemathesis hooks (SCHEMATHESIS_HOOKS=tests.fuzz_hooks): serializers for media types it lacks."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.serializer("application/offset+octet-stream")
def tus_chunk(ctx: Any, value: Any) -> bytes:
    """tus PATCH bodies are raw bytes; generated values of any shape become bytes."""
    if isinstance(value, bytes):
        return value
    return str(value).encode()
