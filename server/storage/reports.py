"""Report aggregates (collection `report_buckets`), their per-audit snapshots (`report_contributions`),
and the indexed reads behind scorecards, trends, repeat findings and rectification performance."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo import ASCENDING, DESCENDING, IndexModel, InsertOne, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from server.db import Database, Doc
from server.reports import aggregates as agg

BUCKETS = "report_buckets"
CONTRIBUTIONS = "report_contributions"

INDEXES: dict[str, list[IndexModel]] = {
    BUCKETS: [
        # trends and a branch head's own scorecard: one key, a run of periods
        IndexModel([("dim", ASCENDING), ("interval", ASCENDING), ("key", ASCENDING), ("period_start", ASCENDING)]),
        # a regional manager's branches, or one scope's sections
        IndexModel([("dim", ASCENDING), ("interval", ASCENDING), ("scope", ASCENDING), ("period_start", ASCENDING)]),
        # head office: every key in a date range
        IndexModel([("dim", ASCENDING), ("interval", ASCENDING), ("period_start", ASCENDING)]),
    ],
    # repeat findings walk a scope's released audits in a date range
    "audits": [
        IndexModel([("branch_id", ASCENDING), ("status", ASCENDING), ("released_at", DESCENDING)]),
        IndexModel([("region_id", ASCENDING), ("status", ASCENDING), ("released_at", DESCENDING)]),
        IndexModel([("status", ASCENDING), ("released_at", DESCENDING)]),
    ],
    # findings by audit: served by the audits module's unique (audit_id, item_id) index
    "rectifications": [
        IndexModel([("branch_id", ASCENDING), ("created_at", ASCENDING)]),
        IndexModel([("region_id", ASCENDING), ("created_at", ASCENDING)]),
        IndexModel([("created_at", ASCENDING)]),
    ],
}

# What of an audit the aggregates depend on; the snapshot keeps exactly this.
CONTRIBUTING_FIELDS = (
    "status",
    "released_at",
    "branch_id",
    "region_id",
    "program_id",
    "checklist_key",
    "score",
    "grade",
    "critical_failed",
    "result.sections",
)
_PROJECTION = dict.fromkeys(CONTRIBUTING_FIELDS, 1)


def _snapshot(audit: Mapping[str, Any]) -> Doc:
    result = audit.get("result") or {}
    sections = [{k: s.get(k) for k in ("id", "score", "points", "max")} for s in result.get("sections") or []]
    return {
        **{k: audit.get(k) for k in CONTRIBUTING_FIELDS if "." not in k},
        "result": {"sections": sections},
    }


# --- keeping the aggregates from events -----------------------------------------------------------


async def apply_audit(db: Database, audit_id: str, session: AsyncClientSession, now: datetime) -> int:
    """Bring the buckets from the audit's last counted state to its current one; returns buckets touched.

    The previous contribution comes from the stored snapshot, so a rescoring applies exactly the
    old->new difference (score, grade, critical failure and section scores alike), and applying the
    same state twice changes nothing."""
    audit = await db.audits.find_one({"_id": audit_id}, _PROJECTION, session=session)
    snapshot = await db[CONTRIBUTIONS].find_one({"_id": audit_id}, session=session)
    old, _ = agg.audit_contribution(snapshot or {})
    new, metas = agg.audit_contribution(audit or {})
    changes = agg.delta(old, new)
    if changes:
        ops: list[UpdateOne] = []
        for bucket_id, fields in changes.items():
            meta = metas.get(bucket_id)
            update: dict[str, Any] = {"$inc": fields}
            if meta is not None:
                update["$setOnInsert"] = meta.document()
            ops.append(UpdateOne({"_id": bucket_id}, update, upsert=meta is not None))
        await db[BUCKETS].bulk_write(ops, ordered=True, session=session)
        await db[BUCKETS].delete_many({"_id": {"$in": list(changes)}, "count": {"$lte": 0}}, session=session)
    if new:
        await db[CONTRIBUTIONS].replace_one(
            {"_id": audit_id}, {**_snapshot(audit or {}), "counted_at": now}, upsert=True, session=session
        )
    elif snapshot is not None:
        await db[CONTRIBUTIONS].delete_one({"_id": audit_id}, session=session)
    return len(changes)


# --- full recomputation ------------------------------------------------------------------------------


@dataclass
class Recomputation:
    totals: dict[str, agg.Fields]
    metas: dict[str, agg.BucketMeta]
    snapshots: list[Doc]


async def recompute(db: Database, batch_size: int = 2000) -> Recomputation:
    """Every bucket computed afresh from the released audits."""
    totals: dict[str, agg.Fields] = {}
    metas: dict[str, agg.BucketMeta] = {}
    snapshots: list[Doc] = []
    async for audit in db.audits.find({"status": "released"}, _PROJECTION, batch_size=batch_size):
        contribution, audit_metas = agg.audit_contribution(audit)
        agg.accumulate(totals, contribution)
        metas.update(audit_metas)
        snapshots.append({"_id": audit["_id"], **_snapshot(audit)})
    return Recomputation(agg.normalized(totals), metas, snapshots)


def _bucket_document(bucket_id: str, meta: agg.BucketMeta, fields: agg.Fields) -> Doc:
    doc: Doc = {
        "_id": bucket_id,
        **meta.document(),
        "count": 0,
        "score_sum": 0,
        "critical_failed": 0,
        "grades": {},
    }
    for name, value in fields.items():
        if name.startswith("grades."):
            doc["grades"][name.split(".", 1)[1]] = value
        else:
            doc[name] = value
    return doc


async def rebuild(db: Database, now: datetime, batch_size: int = 2000) -> dict[str, int]:
    """Replace the buckets and snapshots with a full recomputation from the audits.

    Not one transaction (it can be far larger than one): run it while no releases are being dispatched,
    e.g. after a restore or a change to the aggregation rules."""
    fresh = await recompute(db)
    await db[BUCKETS].delete_many({})
    await db[CONTRIBUTIONS].delete_many({})
    buckets = [_bucket_document(bid, fresh.metas[bid], fields) for bid, fields in fresh.totals.items()]
    for start in range(0, len(buckets), batch_size):
        await db[BUCKETS].bulk_write([InsertOne(d) for d in buckets[start : start + batch_size]], ordered=False)
    for start in range(0, len(fresh.snapshots), batch_size):
        chunk = [{**s, "counted_at": now} for s in fresh.snapshots[start : start + batch_size]]
        await db[CONTRIBUTIONS].insert_many(chunk, ordered=False)
    return {"audits": len(fresh.snapshots), "buckets": len(buckets)}


async def stored_totals(db: Database) -> dict[str, agg.Fields]:
    """The buckets as stored, as flat numbers (for comparing with a recomputation)."""
    return agg.normalized({doc["_id"]: agg.flatten_bucket(doc) async for doc in db[BUCKETS].find({})})


# --- reading the aggregates ----------------------------------------------------------------------------


def period_filter(start: datetime | None, end: datetime | None, interval: str) -> dict[str, Any]:
    """Buckets whose period overlaps [start, end]: the period containing `start` onwards."""
    bounds: dict[str, Any] = {}
    if start is not None:
        bounds["$gte"] = agg.period_of(start, interval)[1]
    if end is not None:
        bounds["$lte"] = end
    return {"period_start": bounds} if bounds else {}


async def bucket_rows(
    db: Database,
    dim: str,
    interval: str,
    scope: Mapping[str, Any],
    *,
    start: datetime | None,
    end: datetime | None,
    program_id: str | None,
) -> list[Doc]:
    query: Doc = {"dim": dim, "interval": interval, **scope, **period_filter(start, end, interval)}
    if program_id:
        query["program_id"] = program_id
    projection = {
        "key": 1,
        "period": 1,
        "period_start": 1,
        "count": 1,
        "score_sum": 1,
        "critical_failed": 1,
        "grades": 1,
        "points_sum": 1,
        "max_sum": 1,
        "region_id": 1,
        "checklist_key": 1,
        "section_id": 1,
    }
    return await db[BUCKETS].find(query, projection).to_list()


def group_summaries(rows: list[Doc], by: str) -> dict[str, tuple[agg.Summary, Doc]]:
    """Sum bucket rows per `by` field; each group keeps one row as a sample of its descriptive fields."""
    grouped: dict[str, tuple[agg.Summary, Doc]] = {}
    for row in rows:
        value = str(row.get(by))
        if value not in grouped:
            grouped[value] = (agg.Summary(), row)
        grouped[value][0].add(row)
    return grouped


async def names(db: Database, collection: str, ids: list[str]) -> dict[str, Doc]:
    docs = await db[collection].find({"_id": {"$in": ids}}, {"code": 1, "name": 1, "region_id": 1}).to_list()
    return {d["_id"]: d for d in docs}


def date_range(field: str, start: datetime | None, end: datetime | None) -> Doc:
    """`{field: {$gte: start, $lte: end}}` with whichever bounds are given; empty when neither is."""
    bounds: Doc = {}
    if start is not None:
        bounds["$gte"] = start
    if end is not None:
        bounds["$lte"] = end
    return {field: bounds} if bounds else {}


# --- repeat findings -------------------------------------------------------------------------------


async def released_audits(
    db: Database, scope: Mapping[str, Any], start: datetime | None, end: datetime | None
) -> list[Doc]:
    query: Doc = {"status": "released", **scope, **date_range("released_at", start, end)}
    projection = {
        "branch_id": 1,
        "region_id": 1,
        "checklist_key": 1,
        "checklist_version": 1,
        "released_at": 1,
    }
    return await db.audits.find(query, projection, batch_size=5000).to_list()


async def failed_items(db: Database, audit_ids: list[str], batch: int = 1000) -> dict[str, set[str]]:
    """Per audit, the checklist items with a finding that stands (not overturned on appeal)."""
    failed: dict[str, set[str]] = defaultdict(set)
    for start in range(0, len(audit_ids), batch):
        chunk = audit_ids[start : start + batch]
        cursor = db.findings.find(
            {"audit_id": {"$in": chunk}, "status": {"$ne": "overturned"}},
            {"audit_id": 1, "item_id": 1},
            batch_size=5000,
        )
        async for finding in cursor:
            failed[finding["audit_id"]].add(finding["item_id"])
    return failed


# --- rectification performance ---------------------------------------------------------------------


async def rectifications(
    db: Database, scope: Mapping[str, Any], start: datetime | None, end: datetime | None
) -> AsyncIterator[Doc]:
    query: Doc = {**scope, **date_range("created_at", start, end)}
    projection = {
        "branch_id": 1,
        "region_id": 1,
        "status": 1,
        "due_at": 1,
        "created_at": 1,
        "closed_at": 1,
        "escalation_level": 1,
    }
    async for rect in db.rectifications.find(query, projection, batch_size=2000):
        yield rect


# --- the audit PDF --------------------------------------------------------------------------------


async def audit_for_report(db: Database, audit_id: str) -> Doc | None:
    return await db.audits.find_one({"_id": audit_id}, {"answers": 0})


async def findings_of(db: Database, audit_id: str) -> list[Doc]:
    """An audit's findings as its report shows them."""
    fields = {"item_id": 1, "section_id": 1, "severity": 1, "status": 1, "answer": 1, "photo_ids": 1}
    return await db.findings.find({"audit_id": audit_id}, fields).sort([("section_id", 1), ("item_id", 1)]).to_list()


async def rectifications_of(db: Database, audit_id: str) -> list[Doc]:
    projection = {"finding_id": 1, "status": 1, "due_at": 1, "closed_at": 1}
    return await db.rectifications.find({"audit_id": audit_id}, projection).to_list()


async def checklist_definition(db: Database, key: str, version: int) -> Doc | None:
    doc = await db.checklist_versions.find_one({"_id": f"{key}@{version}"}, {"definition": 1})
    return doc.get("definition") if doc else None


async def photo_documents(db: Database, photo_ids: list[str]) -> list[Doc]:
    projection = {"gridfs_id": 1, "thumbnails": 1, "purged": 1, "media_type": 1}
    return await db.photos.find({"_id": {"$in": photo_ids}, "purged": {"$ne": True}}, projection).to_list()


async def gridfs_bytes(db: Database, gridfs_id: Any) -> bytes | None:
    try:
        stream = await AsyncGridFSBucket(db, bucket_name="photos").open_download_stream(gridfs_id)
        return await stream.read()
    except NoFile:
        return None
