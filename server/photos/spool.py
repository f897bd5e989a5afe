"""Receiving upload bytes: a bounded in-memory buffer rolling over to a temporary file, hashed on arrival."""

from __future__ import annotations

import hashlib
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
    """Upload bytes on their way in, with their running size and sha256."""

    def __init__(self, limit: int, field: str = "file") -> None:
        self.limit = limit
        self.field = field
        self.size = 0
        self.head = b""
        self._hasher = hashlib.sha256()
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115 - closed by close()

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
        self._file.write(chunk)
        self.size += len(chunk)

    async def fill(self, chunks: AsyncIterator[bytes]) -> None:
        async for chunk in chunks:
            self.write(chunk)

    @property
    def sha256(self) -> str:
        return self._hasher.hexdigest()

    def read_all(self) -> bytes:
        """Every byte received (called in the image executor: it may read from disk)."""
        self._file.seek(0)
        return self._file.read()

    def reader(self) -> IO[bytes]:
        """The received bytes as a file, rewound (GridFS reads it in chunk-sized pieces)."""
        self._file.seek(0)
        return self._file

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
