"""Audits, their findings and appeals; the history listing, read newest first in index-bounded windows."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession

from schemas.audits import AuditQuery
from server.db import Database, Doc
from server.storage.paging import after_filter, combine, decode_cursor, encode_cursor, page_of

HK = "history_key"  # "<started_at ISO UTC>|<_id>": one sortable key, so a cursor is one range bound

# Every history filter leads an index that continues with history_key: with a window (see
# history_windows) any filter is a bounded index range, newest first.
HISTORY_INDEX_FIELDS: list[tuple[str, ...]] = [
    ("auditor_id",),
    ("branch_id",),
    ("program_id",),
    ("checklist_key", "checklist_version"),
    ("checklist_key",),  # a key without its version: the range on history_key must follow the key directly
    # The branch roles' own views (their scope is a branch or region plus released): one exact index each.
    ("branch_id", "status"),
    ("region_id", "status"),
    ("region_id",),
    ("flags",),
    ("grade",),
    ("status",),
    ("critical_failed",),
    ("score",),
]


def _history_index(fields: tuple[str, ...]) -> list[tuple[str, int]]:
    return [*((f, ASCENDING) for f in fields), (HK, DESCENDING)]


LIST_SORT = [("created_at", -1), ("_id", -1)]
APPEAL_SORT = [("filed_at", -1), ("_id", -1)]

INDEXES: dict[str, list[IndexModel]] = {
    "audits": [
        IndexModel([(HK, DESCENDING)]),
        *(IndexModel(_history_index(fields)) for fields in HISTORY_INDEX_FIELDS),
        IndexModel("assignment_id"),
    ],
    "findings": [
        IndexModel([("audit_id", ASCENDING), ("item_id", ASCENDING)], unique=True),
        IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)]),
        IndexModel([("branch_id", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)]),
        IndexModel([("region_id", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)]),
        IndexModel([("severity", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)]),
    ],
    "appeals": [
        IndexModel([("filed_at", DESCENDING), ("_id", DESCENDING)]),
        IndexModel([("status", ASCENDING), ("filed_at", DESCENDING), ("_id", DESCENDING)]),
        IndexModel([("branch_id", ASCENDING), ("filed_at", DESCENDING), ("_id", DESCENDING)]),
        IndexModel("finding_id"),
        IndexModel([("filed_by", ASCENDING), ("idempotency_key", ASCENDING)]),
    ],
}


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def history_key(started_at: datetime, audit_id: str) -> str:
    return f"{iso_utc(started_at)}|{audit_id}"


def history_key_floor(moment: datetime) -> str:
    """The lowest bound for keys at or after `moment`: below "<iso>|<id>" for every printable id, yet never a
    prefix of a key. Measured: the embedded SecantusDB's index range scan drops the keys a `$gte`/`$gt`
    bound is a prefix of (`$gte: "2026-01-07T02"` missed "2026-01-07T02:00:00.000000Z|a702")."""
    return f"{iso_utc(moment)}| "


# --- audits ---------------------------------------------------------------------------------------


async def audit(db: Database, audit_id: str, session: AsyncClientSession | None = None) -> Doc | None:
    return await db.audits.find_one({"_id": audit_id}, session=session)


async def insert_audit(db: Database, doc: Doc, session: AsyncClientSession) -> None:
    """Insert a new audit with its history key."""
    doc.setdefault(HK, history_key(doc["started_at"], doc["_id"]))
    await db.audits.insert_one(doc, session=session)


async def take_assignment(db: Database, assignment_id: str, audit_id: str, session: AsyncClientSession) -> bool:
    """Link a planned assignment to the audit started for it; False when another audit took it first."""
    taken = await db.assignments.update_one(
        {"_id": assignment_id, "audit_id": None},
        {"$set": {"audit_id": audit_id, "status": "in_progress"}},
        session=session,
    )
    return taken.modified_count == 1


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _replaces(item_id: str, answered_at: datetime) -> dict[str, Any]:
    # A missing answer sorts before every date in BSON order, so it is replaced too.
    return {"$lt": [f"$answers.{item_id}.answered_at", answered_at]}


async def apply_answers(
    db: Database,
    audit_id: str,
    answers: Mapping[str, dict[str, Any]],
    now: datetime,
    answerable: list[str],
    answers_rev: int,
    session: AsyncClientSession,
    flags: list[str] | None = None,
) -> bool:
    """Store each answer (stored form, per item) unless a version answered at the same time or later is
    already there, in one pipeline update of the audit: every condition is evaluated against the same
    state, so concurrent batches cannot lose each other's answers and a replayed batch changes nothing.
    The answer revision moves by the number stored; status and updated_at only when one was.
    False, and nothing changed, unless the audit is still answerable at revision `answers_rev` (the state
    the caller read, so what it derives from that state is what was stored). `flags` are raised on the audit
    in the same update (each once).

    One command, by `_id` alone, in the caller's transaction: neither findAndModify (both embedded servers
    take longer for it the more audits are stored) nor a two-field filter (secantusd-py scans the collection
    for one), and no read of the audit the caller has just read."""
    takes = {item_id: _replaces(item_id, a["answered_at"]) for item_id, a in answers.items()}
    applied: dict[str, Any] = {"$add": [{"$cond": [take, 1, 0]} for take in takes.values()]}
    anything: dict[str, Any] = {"$gt": [applied, 0]}
    stage: dict[str, Any] = {
        f"answers.{item_id}": {"$cond": [takes[item_id], {"$literal": answer}, f"$answers.{item_id}"]}
        for item_id, answer in answers.items()
    }
    stage["answers_rev"] = {"$add": [{"$ifNull": ["$answers_rev", 0]}, applied]}
    stage["status"] = {"$cond": [anything, "in_progress", "$status"]}
    stage["updated_at"] = {"$cond": [anything, now, "$updated_at"]}
    if flags:
        stage["flags"] = flags_raised(flags)
    return await _update_if(db, audit_id, _unchanged(answerable, answers_rev), stage, session)


def flags_raised(flags: list[str]) -> dict[str, Any]:
    """The audit's flags with these added at the end, each once: $addToSet's result, in a pipeline update."""
    have = {"$ifNull": ["$flags", []]}
    new = {"$filter": {"input": {"$literal": flags}, "cond": {"$not": [{"$in": ["$$this", have]}]}}}
    return {"$concatArrays": [have, new]}


def _unchanged(answerable: list[str], answers_rev: int) -> dict[str, Any]:
    """The audit is still answerable at the revision read."""
    return {"$and": [{"$in": ["$status", answerable]}, {"$eq": [{"$ifNull": ["$answers_rev", 0]}, answers_rev]}]}


async def _update_if(db: Database, audit_id: str, condition: dict[str, Any], stage: dict[str, Any],
                     session: AsyncClientSession) -> bool:
    """Apply the `$set` stage (field -> expression) only where `condition` holds on the stored audit: one
    update by `_id`; whether it held is whether the audit was modified (every stage changes answers_rev or
    status when it applies)."""
    guarded = {field: {"$cond": [condition, value, f"${field}"]} for field, value in stage.items()}
    result = await db.audits.update_one({"_id": audit_id}, [{"$set": guarded}], session=session)
    return result.modified_count == 1


async def freeze_submitted(
    db: Database,
    audit_id: str,
    answers_rev: int,
    changes: dict[str, Any],
    answerable: list[str],
    session: AsyncClientSession,
) -> bool:
    """Submit only if no answer arrived since the answers were scored (answers_rev unchanged): one update
    by `_id` in the caller's transaction, as apply_answers."""
    stage = {field: {"$literal": value} for field, value in changes.items()}
    return await _update_if(db, audit_id, _unchanged(answerable, answers_rev), stage, session)


async def transition(
    db: Database,
    audit_id: str,
    from_status: str,
    changes: dict[str, Any],
    session: AsyncClientSession,
    unset: list[str] | None = None,
) -> bool:
    update: dict[str, Any] = {"$set": changes}
    if unset:
        update["$unset"] = dict.fromkeys(unset, "")
    result = await db.audits.update_one({"_id": audit_id, "status": from_status}, update, session=session)
    return result.modified_count == 1


async def add_flags(db: Database, audit_id: str, flags: list[str], session: AsyncClientSession) -> None:
    """Raise flags on an audit for its reviewer (each flag once)."""
    await db.audits.update_one({"_id": audit_id}, {"$addToSet": {"flags": {"$each": flags}}}, session=session)


async def photos_by_item(db: Database, audit_id: str) -> dict[str, list[str]]:
    """Photo ids of an audit per item, oldest first. Read by `audit_id` alone (the index's first field) and
    sorted here: secantusd-py scans the collection for a filter of several fields."""
    found = db.photos.find({"audit_id": audit_id}, {"item_id": 1, "owner_type": 1, "purged": 1, "uploaded_at": 1})
    rows = sorted([d async for d in found if d.get("owner_type") == "audit" and d.get("purged") is not True
                   and d.get("item_id")], key=lambda d: (d.get("uploaded_at") or _EPOCH, d["_id"]))
    by_item: dict[str, list[str]] = {}
    for row in rows:
        by_item.setdefault(row["item_id"], []).append(row["_id"])
    return by_item


async def rectifications_of(db: Database, audit_id: str, fields: Iterable[str]) -> list[Doc]:
    """The rectifications opened for an audit's findings, with these fields."""
    return await db.rectifications.find({"audit_id": audit_id}, dict.fromkeys(fields, 1)).to_list()


TRAIL_FIELDS = ("_id", "at", "actor_id", "actor_role", "action", "entity_type", "entity_id", "summary")


async def trail_of(db: Database, audit_id: str) -> list[Doc]:
    """Trail entries about an audit or naming it, oldest first."""
    query = {"$or": [{"entity_id": audit_id}, {"related_ids": audit_id}]}
    return await db.trail.find(query, dict.fromkeys(TRAIL_FIELDS, 1)).sort("at", 1).to_list()


# --- history --------------------------------------------------------------------------------------


# Newest-first history is read in growing time windows ending this many days before the page's upper
# bound (then everything older), so each query carries a narrow history_key range and a page costs about
# what it returns however long the history grows. Measured: the embedded SecantusDB materialises every
# candidate an index yields (and walks a hinted index whole) before applying the limit, so an unbounded
# `find().sort().limit(51)` took 0.4-0.9 s at 10,000 audits; on mongod the windows are index bounds.
HISTORY_WINDOWS_DAYS = (3, 12, 48, 192, 768, 3072)


def history_windows(filters: Mapping[str, Any], now: datetime) -> list[dict[str, Any]]:
    """The history query split into disjoint history_key ranges, newest first, together covering exactly
    what `filters` match. The range comes first in each query: a planner that takes the first indexable
    field (SecantusDB does for several equalities) then walks the narrow range, never a whole index."""
    bounds = dict(filters.get(HK) or {})
    lower: str | None = bounds.get("$gte")
    upper: str | None = bounds.get("$lt")
    rest = {k: v for k, v in filters.items() if k != HK}
    anchor = _key_time(upper) or now
    windows: list[dict[str, Any]] = []
    for days in HISTORY_WINDOWS_DAYS:
        edge = history_key_floor(anchor - timedelta(days=days))
        if lower is not None and edge <= lower:
            break
        windows.append({HK: _key_range(edge, upper), **rest})
        upper = edge
    windows.append({HK: _key_range(lower, upper), **rest} if lower or upper else dict(rest))
    return windows


def _key_range(lower: str | None, upper: str | None) -> dict[str, str]:
    bounds = {"$gte": lower, "$lt": upper}
    return {op: value for op, value in bounds.items() if value is not None}


def _key_time(key: str | None) -> datetime | None:
    """The started_at a history_key bound begins with (a cursor, or a `to` date)."""
    if not key:
        return None
    try:
        return datetime.strptime(key[:27], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def history_bounds(lower: datetime | None, upper: datetime | None, cursor: str | None) -> dict[str, Any]:
    """started_at range and the cursor as bounds on history_key (inclusive dates, exclusive cursor)."""
    bounds: dict[str, Any] = {}
    if lower is not None:
        bounds["$gte"] = history_key_floor(lower)
    upper_key = iso_utc(upper) + "}" if upper is not None else None  # "}" sorts after "|<id>"
    if cursor:
        values = decode_cursor(cursor)
        after = str(values[0]) if values else ""
        upper_key = min(upper_key, after) if upper_key else after
    if upper_key is not None:
        bounds["$lt"] = upper_key
    return {HK: bounds} if bounds else {}


# What a history row shows (server.domain.audit_access.audit_row) and its cursor: a page of 200 rows then
# reads no answers (57 per audit on the shipped checklist, most of each document's bytes).
HISTORY_ROW_FIELDS: tuple[str, ...] = (
    "branch_id", "region_id", "program_id", "checklist_key", "checklist_version", "channel", "covert", "status",
    "auditor_id", "auditor_role", "auditor_name", "started_at", "branch_timezone", "submitted_at", "released_at",
    "score", "grade", "critical_failed", "finding_counts", "open_rectifications", "flags", HK,
)
HISTORY_ROW: dict[str, Any] = dict.fromkeys(HISTORY_ROW_FIELDS, 1)


async def history_page(
    db: Database, filters: dict[str, Any], limit: int, now: datetime, projection: Mapping[str, Any] | None = None
) -> tuple[list[Doc], str | None]:
    """One page of history, newest first; documents carry `projection` (by default a row's fields)."""
    fields = HISTORY_ROW if projection is None else projection
    docs: list[Doc] = []
    for query in history_windows(filters, now):
        docs += await db.audits.find(query, fields).sort(HK, DESCENDING).limit(limit + 1 - len(docs)).to_list()
        if len(docs) > limit:
            rows = docs[:limit]
            return rows, encode_cursor([rows[-1][HK]])
    return docs, None


async def history_all(
    db: Database, filters: dict[str, Any], projection: Mapping[str, Any] | None, batch_size: int, now: datetime
) -> AsyncIterator[Doc]:
    """Every matching audit, newest first, window by window (exports)."""
    for query in history_windows(filters, now):
        async for doc in db.audits.find(query, projection).sort(HK, DESCENDING).batch_size(batch_size):
            yield doc


async def explain_history(db: Database, filters: dict[str, Any], now: datetime) -> list[Doc]:
    """explain() of every window query a history listing may run."""
    return [
        dict(await db.audits.find(query).sort(HK, DESCENDING).limit(51).explain())
        for query in history_windows(filters, now)
    ]


EQUALITY_FILTERS = (
    "branch_id",
    "region_id",
    "program_id",
    "checklist_key",
    "checklist_version",
    "status",
    "grade",
    "critical_failed",
)


def history_filter(scope: Mapping[str, Any], query: AuditQuery) -> dict[str, Any] | None:
    """The Mongo filter for a history query within the caller's scope (None when the scope excludes it)."""
    filters: dict[str, Any] = {
        name: getattr(query, name) for name in EQUALITY_FILTERS if getattr(query, name) is not None
    }
    auditor = query.inspector or query.auditor_id
    if auditor:
        filters["auditor_id"] = auditor
    for key, value in scope.items():
        if key in filters and filters[key] != value:
            return None
        filters[key] = value
    if query.min_score is not None or query.max_score is not None:
        bounds = (("$gte", query.min_score), ("$lte", query.max_score))
        filters["score"] = {k: v for k, v in bounds if v is not None}
    if query.has_flag:
        filters["flags"] = {"$gte": ""} if query.has_flag == "any" else query.has_flag
    filters.update(history_bounds(query.from_, query.to, query.cursor))
    return filters


# --- findings -------------------------------------------------------------------------------------


async def release_findings(db: Database, audit_id: str, now: datetime, session: AsyncClientSession) -> None:
    await db.findings.update_many({"audit_id": audit_id}, {"$set": {"released_at": now}}, session=session)


async def delete_findings(db: Database, audit_id: str, session: AsyncClientSession) -> None:
    await db.findings.delete_many({"audit_id": audit_id}, session=session)


async def insert_findings(db: Database, findings: list[Doc], session: AsyncClientSession) -> None:
    if findings:
        await db.findings.insert_many(findings, session=session)


async def findings_of(db: Database, audit_id: str, session: AsyncClientSession | None = None, *,
                      fields: dict[str, int] | None = None) -> list[Doc]:
    """An audit's findings by item (`fields`: only these, for a view that shows them)."""
    return await db.findings.find({"audit_id": audit_id}, fields, session=session).sort("item_id", 1).to_list()


async def finding(db: Database, finding_id: str) -> Doc | None:
    return await db.findings.find_one({"_id": finding_id})


# What a listed finding is made of (server.domain.audit_access.finding_view, its item text and appeal window):
# not who audited, which a branch must never learn for a covert visit.
FINDING_FIELDS = {f: 1 for f in (
    "audit_id", "branch_id", "region_id", "program_id", "checklist_key", "checklist_version", "item_id",
    "section_id", "severity", "critical", "answer", "photo_ids", "status", "fixed_on_spot", "covert",
    "created_at", "released_at", "pending_appeal_id")}


async def findings_page(
    db: Database, filters: dict[str, Any], limit: int, cursor: str | None
) -> tuple[list[Doc], str | None]:
    hint: Any = [("created_at", -1), ("_id", -1)]
    for field in ("audit_id", "branch_id", "region_id", "severity"):
        if field in filters:
            hint = (
                [("audit_id", 1), ("item_id", 1)]
                if field == "audit_id"
                else [(field, 1), ("created_at", -1), ("_id", -1)]
            )
            break
    query = combine(filters, after_filter(LIST_SORT, cursor))
    docs = await db.findings.find(query, FINDING_FIELDS).sort(LIST_SORT).hint(hint).limit(limit + 1).to_list()
    return page_of(docs, LIST_SORT, limit)


# --- appeals --------------------------------------------------------------------------------------


async def appeal(db: Database, appeal_id: str) -> Doc | None:
    return await db.appeals.find_one({"_id": appeal_id})


async def appeal_by_key(db: Database, filed_by: str, key: str) -> Doc | None:
    return await db.appeals.find_one({"filed_by": filed_by, "idempotency_key": key})


async def appeals_of(db: Database, audit_id: str) -> list[Doc]:
    return await db.appeals.find({"audit_id": audit_id}, APPEAL_FIELDS).sort("filed_at", 1).to_list()


async def appeals_page(
    db: Database, filters: dict[str, Any], limit: int, cursor: str | None
) -> tuple[list[Doc], str | None]:
    query = combine(filters, after_filter(APPEAL_SORT, cursor))
    docs = await db.appeals.find(query, APPEAL_FIELDS).sort(APPEAL_SORT).limit(limit + 1).to_list()
    return page_of(docs, APPEAL_SORT, limit)


PUBLIC_APPEAL = ("finding_id", "audit_id", "branch_id", "region_id", "reason", "status", "filed_by", "filed_at",
                 "decided_by", "decided_at", "comment")
# What a listed appeal is made of (public_appeal).
APPEAL_FIELDS = dict.fromkeys((*PUBLIC_APPEAL, "photo_ids"), 1)


def public_appeal(doc: Doc) -> dict[str, Any]:
    return {k: doc.get(k) for k in PUBLIC_APPEAL} | {"id": doc["_id"], "photo_ids": list(doc.get("photo_ids") or [])}
