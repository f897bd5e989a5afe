"""The files of a backup: each collection is one gzip stream of its documents' raw BSON, back to back.

Raw BSON is written and read as the server sent it (RawBSONDocument): nothing is decoded, so every type,
key order and byte of a document comes back as it was, and the work per document is a copy. The
checksum covers the compressed bytes on disk, so a flipped byte or a cut-short file is caught before
anything is decompressed or restored."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Protocol

# A BSON document is at most 16 MiB; anything claiming more is damage, not data.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024 + 16 * 1024
READ_BLOCK = 1024 * 1024


# A document's raw BSON, as the driver hands it over (RawBSONDocument.raw).
RawDocument = bytes | memoryview


class ArchiveDamaged(Exception):
    """A backup file does not match what its manifest says; the message names the file."""


@dataclass(frozen=True)
class FileDigest:
    size: int
    sha256: str


class _HashingWriter(io.RawIOBase):
    """Counts and hashes the compressed bytes on their way to disk."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(data)
        self.digest.update(view)
        self.size += len(view)
        self.out.write(view)
        return len(view)


class CollectionWriter:
    """Writes one collection's documents (raw BSON) into `path`, gzip-compressed, hashing as it goes.

    Blocking: callers run `write` and `close` in a thread so the event loop keeps serving."""

    def __init__(self, path: Path, compress_level: int) -> None:
        self.path = path
        self._file = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._hashing = _HashingWriter(self._file)
        self._gzip = gzip.GzipFile(fileobj=self._hashing, mode="wb", compresslevel=compress_level, mtime=0)
        self.documents = 0
        self.raw_bytes = 0

    def write(self, documents: list[RawDocument]) -> None:
        for raw in documents:
            self._gzip.write(raw)
            self.raw_bytes += len(raw)
        self.documents += len(documents)

    def close(self) -> FileDigest:
        self._gzip.close()
        self._file.flush()
        _fsync(self._file)
        self._file.close()
        return FileDigest(self._hashing.size, self._hashing.digest.hexdigest())

    def discard(self) -> None:
        """Close without caring about the result (the backup failed)."""
        try:
            self._gzip.close()
        finally:
            self._file.close()


def _fsync(handle: IO[bytes]) -> None:
    os.fsync(handle.fileno())


class _HashingReader(io.RawIOBase):
    """Hashes the compressed bytes as gzip reads them."""

    def __init__(self, source: BinaryIO) -> None:
        self.source = source
        self.digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer)
        data = self.source.read(len(view))
        n = len(data)
        view[:n] = data
        self.digest.update(data)
        self.size += n
        return n


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def documents_in(stream: _Readable, name: str) -> Iterator[bytes]:
    """The raw BSON documents of a decompressed stream, in order."""
    while True:
        prefix = stream.read(4)
        if not prefix:
            return
        if len(prefix) < 4:
            raise ArchiveDamaged(f"{name}: a document is cut short")
        (length,) = struct.unpack("<i", prefix)
        if length < 5 or length > MAX_DOCUMENT_BYTES:
            raise ArchiveDamaged(f"{name}: a document claims {length} bytes")
        rest = stream.read(length - 4)
        if len(rest) < length - 4 or rest[-1:] != b"\x00":
            raise ArchiveDamaged(f"{name}: a document is cut short")
        yield prefix + rest


def verify_file(path: Path, expected: FileDigest, documents: int) -> None:
    """Check size and checksum of the file, and that it decompresses into exactly `documents` documents.

    One pass: the compressed bytes are hashed as they are decompressed. Raises ArchiveDamaged."""
    name = path.name
    if not path.is_file():
        raise ArchiveDamaged(f"{name} is missing")
    size = path.stat().st_size
    if size != expected.size:
        raise ArchiveDamaged(f"{name} is {size} bytes, the manifest says {expected.size} (cut short or altered)")
    with open(path, "rb") as raw:
        hashing = _HashingReader(raw)
        counted = 0
        try:
            with gzip.GzipFile(fileobj=io.BufferedReader(hashing, READ_BLOCK), mode="rb") as stream:
                for _ in documents_in(stream, name):
                    counted += 1
        except (OSError, EOFError, zlib.error) as exc:
            raise ArchiveDamaged(f"{name} does not decompress ({exc})") from None
        # gzip may stop before the last bytes (padding); hash whatever it left.
        while block := raw.read(READ_BLOCK):
            hashing.digest.update(block)
    if hashing.digest.hexdigest() != expected.sha256:
        raise ArchiveDamaged(f"{name} does not match its checksum (damaged)")
    if counted != documents:
        raise ArchiveDamaged(f"{name} holds {counted} documents, the manifest says {documents}")


def read_documents(path: Path) -> Iterator[bytes]:
    """The raw BSON documents of a verified collection file, streamed."""
    with gzip.open(path, "rb") as stream:
        yield from documents_in(stream, path.name)


def file_digest(path: Path) -> FileDigest:
    """Size and sha256 of a file as it is on disk."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(READ_BLOCK):
            digest.update(block)
            size += len(block)
    return FileDigest(size, digest.hexdigest())
