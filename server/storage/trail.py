"""The trail: an append-only, hash-chained record of who did what. Entries are written with the change
they record (`seal_pending`), then sealed in order by the sequencer: each gets `seq`, `prev_hash` (the
previous entry's hash) and `hash`, so editing, deleting or reordering an entry breaks the chain."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from server.db import Database, Doc
from server.storage.paging import after_filter, combine, page_of

GENESIS_HASH = "0" * 64
HEAD_ID = "head"
PENDING_ORDER = [("at", ASCENDING), ("_id", ASCENDING)]
LISTING_ORDER = [("at", DESCENDING), ("_id", DESCENDING)]

INDEXES: dict[str, list[IndexModel]] = {
    "trail": [
        IndexModel([("seal_pending", ASCENDING), *PENDING_ORDER]),
        IndexModel("seq", unique=True, sparse=True),
        IndexModel(LISTING_ORDER),
        IndexModel([("entity_id", ASCENDING), *LISTING_ORDER]),
        IndexModel([("actor_id", ASCENDING), *LISTING_ORDER]),
        IndexModel([("action", ASCENDING), *LISTING_ORDER]),
        IndexModel([("related_ids", ASCENDING), *LISTING_ORDER]),
    ],
}

# Fields that are not part of what an entry says: the hash itself and the sealing flag.
_UNHASHED = frozenset({"hash", "seal_pending"})


# --- hashing (pure) ------------------------------------------------------------------------------


def _canonical_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # BSON keeps milliseconds in UTC; render exactly that so a read-back entry hashes the same.
        utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return {"$date": utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"}
    if isinstance(value, dict):
        return {str(k): _canonical_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical_value(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def canonical_json(entry: Doc) -> str:
    """The entry (without its hash) as sorted, compact JSON: the bytes the hash covers."""
    content = {k: v for k, v in entry.items() if k not in _UNHASHED}
    return json.dumps(_canonical_value(content), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(entry: Doc, prev_hash: str) -> str:
    return hashlib.sha256((canonical_json(entry) + prev_hash).encode("utf-8")).hexdigest()


def seal(entry: Doc, seq: int, prev_hash: str) -> Doc:
    """The fields sealing adds to an entry."""
    sealed = {**entry, "seq": seq, "prev_hash": prev_hash}
    return {"seq": seq, "prev_hash": prev_hash, "hash": entry_hash(sealed, prev_hash)}


@dataclass(frozen=True)
class BrokenLink:
    seq: int
    entry_id: str | None
    problem: str  # edited | missing | out_of_order
    detail: str


@dataclass(frozen=True)
class VerifyResult:
    checked: int
    head_seq: int
    unsealed: int
    broken: BrokenLink | None

    @property
    def ok(self) -> bool:
        return self.broken is None


class ChainWalker:
    """Checks sealed entries fed in seq order; stops at the first broken link (no I/O)."""

    def __init__(self) -> None:
        self.expected_seq = 1
        self.prev_hash = GENESIS_HASH
        self.prev_entry: Doc | None = None
        self.checked = 0
        self.broken: BrokenLink | None = None

    def feed(self, entry: Doc) -> bool:
        """False once the chain is broken."""
        seq = int(entry.get("seq", 0))
        if seq < self.expected_seq:
            self.broken = BrokenLink(seq, entry["_id"], "out_of_order",
                                     f"seq {seq} appears after seq {self.expected_seq - 1}")
        elif seq > self.expected_seq:
            missing = (f"seq {self.expected_seq}" if seq == self.expected_seq + 1
                       else f"seqs {self.expected_seq}..{seq - 1}")
            self.broken = BrokenLink(self.expected_seq, None, "missing",
                                     f"{missing} missing before entry {entry['_id']} (seq {seq})")
        elif entry_hash(entry, str(entry.get("prev_hash"))) != entry.get("hash"):
            self.broken = BrokenLink(seq, entry["_id"], "edited", "content does not match its hash")
        elif entry.get("prev_hash") != self.prev_hash:
            # The entry before it hashes consistently but is not what this entry was chained to:
            # it was rewritten with a recomputed hash, or replaced.
            before = self.prev_entry
            self.broken = BrokenLink(
                seq - 1, before["_id"] if before else None, "edited",
                f"entry seq {seq} was chained to a different version of seq {seq - 1} (hash recomputed)",
            )
        if self.broken is not None:
            return False
        self.prev_hash = str(entry["hash"])
        self.prev_entry = entry
        self.expected_seq = seq + 1
        self.checked += 1
        return True

    def finish(self, head: Doc | None) -> None:
        """Compare the end of the chain with the head the sealer recorded (catches deleted tail entries)."""
        if self.broken is not None or head is None:
            return
        head_seq = int(head.get("seq", 0))
        last = self.expected_seq - 1
        if head_seq > last:
            self.broken = BrokenLink(last + 1, None, "missing",
                                     f"the chain ends at seq {last} but seq {head_seq} was sealed")
        elif head_seq == last and last > 0 and head.get("hash") != self.prev_hash:
            self.broken = BrokenLink(last, self.prev_entry["_id"] if self.prev_entry else None, "edited",
                                     "the last entry differs from the sealed head")


# --- sealing (run by the sequencer, inside a transaction) -----------------------------------------


async def head(db: Database, session: AsyncClientSession | None = None) -> Doc | None:
    return await db.trail_head.find_one({"_id": HEAD_ID}, session=session)


async def seal_pending(db: Database, limit: int, now: datetime, session: AsyncClientSession) -> int:
    """Seal up to `limit` pending entries after the current head; returns how many."""
    found = db.trail.find({"seal_pending": True}, session=session)
    entries = await found.sort(PENDING_ORDER).limit(limit).to_list()
    if not entries:
        return 0
    current = await head(db, session)
    seq = int(current["seq"]) if current else 0
    prev_hash = str(current["hash"]) if current else GENESIS_HASH
    ops = []
    for entry in entries:
        seq += 1
        fields = seal(entry, seq, prev_hash)
        prev_hash = fields["hash"]
        ops.append(UpdateOne({"_id": entry["_id"], "seal_pending": True},
                             {"$set": fields, "$unset": {"seal_pending": ""}}))
    await db.trail.bulk_write(ops, ordered=True, session=session)
    # Head moves in the same transaction: two sealers racing conflict on this document.
    await db.trail_head.update_one(
        {"_id": HEAD_ID}, {"$set": {"seq": seq, "hash": prev_hash, "updated_at": now}}, upsert=True,
        session=session,
    )
    return len(entries)


async def verify_chain(db: Database, batch_size: int = 1000) -> VerifyResult:
    """Walk every sealed entry in seq order, recomputing hashes; report the first broken link."""
    walker = ChainWalker()
    async for entry in db.trail.find({"seq": {"$gt": 0}}).sort("seq", ASCENDING).batch_size(batch_size):
        if not walker.feed(entry):
            break
    current = await head(db)
    walker.finish(current)
    broken = walker.broken
    if broken is not None and broken.problem == "edited" and broken.entry_id is not None:
        broken = await _classify_reordering(db, broken)
    unsealed = await db.trail.count_documents({"seal_pending": True})
    return VerifyResult(checked=walker.checked, head_seq=int(current["seq"]) if current else 0,
                        unsealed=unsealed, broken=broken)


async def _classify_reordering(db: Database, broken: BrokenLink) -> BrokenLink:
    """An entry chained to some other, intact entry was moved rather than edited."""
    entry = await db.trail.find_one({"seq": broken.seq + 1})
    if entry is None or broken.detail == "content does not match its hash":
        return broken
    chained_to = await db.trail.find_one({"hash": entry.get("prev_hash")}, {"seq": 1})
    if chained_to is not None and chained_to.get("seq") != broken.seq:
        return BrokenLink(broken.seq + 1, entry["_id"], "out_of_order",
                          f"entry seq {broken.seq + 1} is chained to seq {chained_to.get('seq')}")
    return broken


# --- reading -------------------------------------------------------------------------------------


async def page(db: Database, filters: dict[str, Any], limit: int,
               cursor: str | None) -> tuple[list[Doc], str | None]:
    query = combine(filters, after_filter(LISTING_ORDER, cursor))
    docs = await db.trail.find(query).sort(LISTING_ORDER).limit(limit + 1).to_list()
    return page_of(docs, LISTING_ORDER, limit)


def public_entry(doc: Doc) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "at": doc["at"],
        "actor_id": doc.get("actor_id"),
        "actor_role": doc.get("actor_role"),
        "action": doc["action"],
        "entity_type": doc.get("entity_type"),
        "entity_id": doc.get("entity_id"),
        "related_ids": doc.get("related_ids", []),
        "summary": doc.get("summary", {}),
        "request_id": doc.get("request_id"),
        "client_address": doc.get("client_address"),
        "seq": doc.get("seq"),
        "hash": doc.get("hash"),
        "sealed": "hash" in doc,
    }
