"""Receiving upload bytes: a bounded in-memory buffer rolling over to a temporary file, hashed on arrival."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from typing import IO

from server.errors import PayloadTooLarge, field_error

# Per-upload memory bound: bytes beyond this go to a temporary file, so 8 concurrent 20 MB
# uploads hold at most 8 MB in memory while they stream in.
SPOOL_MEMORY_BYTES = 1024 * 1024
# Read size from the socket/multipart reader: large enough to keep syscalls few, small enough to
# refuse an oversized upload within one read of the limit.
READ_CHUNK_BYTES = 256 * 1024
HEAD_BYTES = 64


class Spool:
    """Upload bytes on their way in, with their running size and sha256.

    Once filled, the bytes are read by position (`read_at`), never through a shared file position, so the
    image check (in the executor) and the GridFS write (on the event loop) can read them at the same time."""

    def __init__(self, limit: int, field: str = "file") -> None:
        self.limit = limit
        self.field = field
        self.size = 0
        self.head = b""
        self._hasher = hashlib.sha256()
        self._memory = bytearray()
        self._file: IO[bytes] | None = None

    def write(self, chunk: bytes) -> None:
        """Append; refuses (413) the moment the upload grows past the limit."""
        if self.size + len(chunk) > self.limit:
            raise PayloadTooLarge(
                f"The {self.field} is larger than the {self.limit} bytes allowed",
                errors=[field_error(["body", self.field], f"larger than {self.limit} bytes")],
            )
        if len(self.head) < HEAD_BYTES:
            self.head += chunk[: HEAD_BYTES - len(self.head)]
        self._hasher.update(chunk)
        if self._file is None and len(self._memory) + len(chunk) > SPOOL_MEMORY_BYTES:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
            self._file.write(self._memory)
            self._memory = bytearray()
        if self._file is None:
            self._memory += chunk
        else:
            self._file.write(chunk)
        self.size += len(chunk)

    async def fill(self, chunks: AsyncIterator[bytes]) -> None:
        async for chunk in chunks:
            self.write(chunk)

    @property
    def sha256(self) -> str:
        return self._hasher.hexdigest()

    def read_at(self, offset: int, size: int) -> bytes:
        """Up to `size` bytes from `offset` (thread-safe: positional reads, no shared file position)."""
        size = max(0, min(size, self.size - offset))
        if self._file is None:
            return bytes(self._memory[offset : offset + size])
        self._file.flush()
        parts: list[bytes] = []
        fd = self._file.fileno()
        while size > 0:
            part = os.pread(fd, size, offset)
            if not part:
                break
            parts.append(part)
            offset += len(part)
            size -= len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def read_all(self) -> bytes:
        """Every byte received (called in the image executor: it may read from disk)."""
        return self.read_at(0, self.size)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._memory = bytearray()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
