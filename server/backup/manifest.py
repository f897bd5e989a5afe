"""What a backup says about itself: versions, counts per collection, a checksum per file, the trail's head.

The manifest carries a checksum of its own content, so a flipped byte anywhere in a backup, the manifest
included, is found before anything is written. No I/O here."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

FORMAT = "branch-audit-backup"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"


class BackupRefused(Exception):
    """The backup cannot be restored (damaged, cut short, newer than this release); one readable line."""


class CollectionEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    file: str
    documents: int
    raw_bytes: int
    size: int
    sha256: str
    # As listed by the server (listIndexes / listCollections), in MongoDB Extended JSON (canonical).
    indexes: list[dict[str, Any]]
    options: dict[str, Any]


class TrailHead(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int
    hash: str | None
    unsealed: int


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    product_version: str
    schema_version: int
    database: str
    started_at: datetime
    finished_at: datetime
    # How the point in time was held: "snapshot-session" (readConcern snapshot at one atClusterTime) or
    # "transaction" (one read-only transaction with readConcern snapshot); see server.backup.snapshot.
    snapshot_method: str
    collections: list[CollectionEntry]
    trail: TrailHead
    photo_files: int
    photo_bytes: int

    def collection(self, name: str) -> CollectionEntry | None:
        return next((c for c in self.collections if c.name == name), None)

    @property
    def total_size(self) -> int:
        return sum(c.size for c in self.collections)

    @property
    def total_raw_bytes(self) -> int:
        return sum(c.raw_bytes for c in self.collections)


def _canonical(content: dict[str, Any]) -> str:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def dump(manifest: Manifest) -> str:
    """The manifest as JSON, with the checksum of its own content."""
    content = manifest.model_dump(mode="json")
    content["manifest_sha256"] = hashlib.sha256(_canonical(content).encode()).hexdigest()
    return json.dumps(content, indent=2, ensure_ascii=False) + "\n"


def load(text: str) -> Manifest:
    """Parse and check a manifest; raises BackupRefused naming what is wrong."""
    try:
        content = json.loads(text)
    except ValueError:
        raise BackupRefused("the manifest is not valid JSON (damaged or cut short)") from None
    if not isinstance(content, dict):
        raise BackupRefused("the manifest is not a JSON object")
    claimed = content.pop("manifest_sha256", None)
    if content.get("format") != FORMAT:
        raise BackupRefused("this is not a branch-audit backup (no branch-audit manifest)")
    if claimed != hashlib.sha256(_canonical(content).encode()).hexdigest():
        raise BackupRefused("the manifest does not match its checksum (damaged)")
    if content.get("format_version") != FORMAT_VERSION:
        raise BackupRefused(f"backup format {content.get('format_version')} is not one this release reads "
                            f"(it reads format {FORMAT_VERSION})")
    try:
        return Manifest.model_validate(content)
    except ValidationError as exc:
        raise BackupRefused(f"the manifest is incomplete: {exc.errors()[0]['loc']}") from None


def check_schema(manifest: Manifest, understood: int) -> None:
    """A backup of data newer than this release understands is refused, as the server refuses such data."""
    if manifest.schema_version > understood:
        raise BackupRefused(f"the backup holds schema version {manifest.schema_version}, but this release "
                            f"understands up to {understood}: restore it with a newer branch-audit")
