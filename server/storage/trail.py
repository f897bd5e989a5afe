"""The trail: an append-only, hash-chained record of who did what. Entries are written with the change
they record, together with one `trail_pending` marker per transaction; the sequencer then seals them in
order by inserting chain links `trail_chain {_id: entry_id, seq, prev_hash, hash}`, where `hash` covers
the entry, its seq and the previous link's hash (seq is dense, so the chain is read in bounded windows).
Entries are never modified (updates are what the embedded server is slow at), so editing, deleting or
reordering an entry or a link breaks the chain."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession

from server.db import Database, Doc
from server.storage.outbox import MARKER_ORDER, SequencingConflict, delete_markers, slices
from server.storage.paging import after_filter, combine, page_of

GENESIS_HASH = "0" * 64
HEAD_ID = "head"
LISTING_ORDER = [("at", DESCENDING), ("_id", DESCENDING)]
VERIFY_BATCH = 500

INDEXES: dict[str, list[IndexModel]] = {
    "trail": [
        IndexModel(LISTING_ORDER),
        IndexModel([("entity_id", ASCENDING), *LISTING_ORDER]),
        IndexModel([("actor_id", ASCENDING), *LISTING_ORDER]),
        IndexModel([("action", ASCENDING), *LISTING_ORDER]),
        IndexModel([("related_ids", ASCENDING), *LISTING_ORDER]),
    ],
    "trail_pending": [IndexModel(MARKER_ORDER)],
    # Unique seq (and _id = entry id): a second sealer whose lease lapsed cannot reuse a position or
    # seal an entry twice.
    "trail_chain": [IndexModel("seq", unique=True)],
}

# Fields that are not part of what an entry says: the hash itself and the sealing flag of older entries.
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


def sealed_view(entry: Doc, link: Doc) -> Doc:
    """An entry as its chain link sealed it: with seq, prev_hash and hash."""
    return {**entry, "seq": link["seq"], "prev_hash": link.get("prev_hash"), "hash": link.get("hash")}


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


# --- writing (UnitOfWork.flush, inside the change's transaction) -----------------------------------


async def write_entries(db: Database, entries: list[Doc], at: datetime, session: AsyncClientSession,
                        by: str) -> None:
    """The entries, and one marker listing them in recording order for the sealer (`by`: the committing
    instance, as on the outbox's markers)."""
    await db.trail.insert_many(entries, session=session)
    await db.trail_pending.insert_one(
        {"_id": ObjectId(), "at": at, "by": by, "entry_ids": [e["_id"] for e in entries]}, session=session)


# --- sealing (run by the sequencer, inside a transaction) -----------------------------------------


async def head(db: Database, session: AsyncClientSession | None = None) -> Doc | None:
    return await db.trail_head.find_one({"_id": HEAD_ID}, session=session)


async def entries_by_ids(db: Database, entry_ids: list[str],
                         session: AsyncClientSession | None = None) -> dict[str, Doc]:
    found: dict[str, Doc] = {}
    for ids in slices(entry_ids):
        found.update({d["_id"]: d for d in await db.trail.find({"_id": {"$in": ids}}, session=session).to_list()})
    return found


async def pending_markers(db: Database, limit: int) -> list[Doc]:
    """The oldest `limit` markers, in commit order (see outbox.pending_markers)."""
    return await db.trail_pending.find({}).sort(MARKER_ORDER).limit(limit).to_list()


async def seal_markers(db: Database, markers: list[Doc], now: datetime, session: AsyncClientSession,
                       known_head: tuple[int, str] | None = None) -> tuple[int, tuple[int, str]]:
    """Seal the markers' entries, in order, after the current head; returns how many, and the new head.

    `known_head` is (seq, hash) of the head as the caller believes it (saves reading it); the head moves
    only from exactly that seq. Raises outbox.SequencingConflict (aborting the transaction) when another
    sealer took a marker or moved the head."""
    entry_ids = [entry_id for m in markers for entry_id in m["entry_ids"]]
    entries = await entries_by_ids(db, entry_ids, session)
    if known_head is None:
        current = await head(db, session)
        known_head = (int(current["seq"]), str(current["hash"])) if current else (0, GENESIS_HASH)
    start_seq, prev_hash = known_head
    seq = start_seq
    links = []
    for entry_id in entry_ids:
        # A marker commits with its entries, so each is there; a missing one was deleted: skip it
        # rather than seal a hole the chain could never account for.
        entry = entries.get(entry_id)
        if entry is None:
            continue
        seq += 1
        fields = seal(entry, seq, prev_hash)
        links.append({"_id": entry_id, "seq": seq, "prev_hash": prev_hash, "hash": fields["hash"]})
        prev_hash = fields["hash"]
    if links:
        await db.trail_chain.insert_many(links, ordered=True, session=session)
    await delete_markers(db.trail_pending, markers, session)
    # Head moves in the same transaction, from exactly the seq it was sealed after: two sealers racing
    # conflict on this document.
    moved = await db.trail_head.update_one(
        {"_id": HEAD_ID, "seq": start_seq}, {"$set": {"seq": seq, "hash": prev_hash, "updated_at": now}},
        upsert=start_seq == 0, session=session,
    )
    if not moved.matched_count and moved.upserted_id is None:
        raise SequencingConflict(f"the trail head is no longer at seq {start_seq}")
    return len(links), (seq, prev_hash)


async def unsealed_count(db: Database) -> int:
    rows = await (await db.trail_pending.aggregate(
        [{"$group": {"_id": None, "n": {"$sum": {"$size": "$entry_ids"}}}}])).to_list()
    return int(rows[0]["n"]) if rows else 0


async def anything_unsealed(db: Database) -> bool:
    return await db.trail_pending.find_one({}, {"_id": 1}) is not None


async def sealed_entry(db: Database, seq: int) -> Doc | None:
    """The entry sealed at `seq`, as sealed (None when the link or the entry is gone)."""
    link = await db.trail_chain.find_one({"seq": seq})
    entry = None if link is None else await db.trail.find_one({"_id": link["_id"]})
    return None if link is None or entry is None else sealed_view(entry, link)


async def verify_chain(db: Database, batch_size: int = VERIFY_BATCH) -> VerifyResult:
    """Walk every chain link in seq order, recomputing hashes over the entries; report the first broken link."""
    walker = ChainWalker()
    current = await head(db)
    # Bounded windows up to the head, then one open-ended read for anything past it.
    end = int(current["seq"]) if current else 0
    after = 0
    while walker.broken is None:
        bounds: dict[str, int] = {"$gt": after} if after >= end else {"$gt": after, "$lte": after + batch_size}
        links = await db.trail_chain.find({"seq": bounds}).sort("seq", ASCENDING).limit(batch_size).to_list()
        if not links:
            if after >= end:
                break
            after += batch_size  # a window the chain skips entirely: the walker reports the gap next
            continue
        entries = await entries_by_ids(db, [link["_id"] for link in links])
        for link in links:
            seq = int(link["seq"])
            entry = entries.get(link["_id"])
            if entry is None and seq == walker.expected_seq:
                walker.broken = BrokenLink(seq, link["_id"], "missing",
                                           f"entry {link['_id']} sealed at seq {seq} is gone")
                break
            # An absent entry after a gap: the walker reports the gap first.
            view = sealed_view(entry, link) if entry is not None else {"_id": link["_id"], "seq": seq}
            if not walker.feed(view):
                break
        after = int(links[-1]["seq"])
    walker.finish(current)
    broken = walker.broken
    if broken is not None and broken.problem == "edited" and broken.entry_id is not None:
        broken = await _classify_reordering(db, broken)
    return VerifyResult(checked=walker.checked, head_seq=int(current["seq"]) if current else 0,
                        unsealed=await unsealed_count(db), broken=broken)


async def _classify_reordering(db: Database, broken: BrokenLink) -> BrokenLink:
    """An entry chained to some other, intact link was moved rather than edited."""
    link = await db.trail_chain.find_one({"seq": broken.seq + 1})
    if link is None or broken.detail == "content does not match its hash":
        return broken
    chained_to = await db.trail_chain.find_one({"hash": link.get("prev_hash")}, {"seq": 1})
    if chained_to is not None and chained_to["seq"] != broken.seq:
        return BrokenLink(broken.seq + 1, link["_id"], "out_of_order",
                          f"entry seq {broken.seq + 1} is chained to seq {chained_to['seq']}")
    return broken


# --- reading -------------------------------------------------------------------------------------


# What a listed entry shows (public_entry), and of its link in the chain.
ENTRY_FIELDS = dict.fromkeys(("at", "actor_id", "actor_role", "action", "entity_type", "entity_id", "related_ids",
                              "summary", "request_id", "client_address"), 1)
LINK_FIELDS = {"seq": 1, "prev_hash": 1, "hash": 1}


async def page(db: Database, filters: dict[str, Any], limit: int,
               cursor: str | None) -> tuple[list[Doc], str | None]:
    query = combine(filters, after_filter(LISTING_ORDER, cursor))
    docs = await db.trail.find(query, ENTRY_FIELDS).sort(LISTING_ORDER).limit(limit + 1).to_list()
    found, cursor_out = page_of(docs, LISTING_ORDER, limit)
    links = {link["_id"]: link for ids in slices([d["_id"] for d in found])
             for link in await db.trail_chain.find({"_id": {"$in": ids}}, LINK_FIELDS).to_list()}
    return [sealed_view(d, links[d["_id"]]) if d["_id"] in links else d for d in found], cursor_out


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
