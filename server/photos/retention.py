"""The retention purge: bytes of photos of long-released audits go; hashes and metadata stay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from schemas.photo_events import PhotoPurged
from server.context import ActorInfo, Services, UnitOfWork
from server.db import Doc
from server.photos import tus
from server.storage import photos as store

# Audits looked at per round, so a first purge of years of audits does not build one huge $in.
AUDIT_BATCH = 200


@dataclass(frozen=True)
class PurgeResult:
    photos: int
    bytes_freed: int
    uploads_expired: int


async def purge_photos(services: Services, older_than_days: int) -> PurgeResult:
    """Remove the GridFS bytes of every photo of an audit released more than `older_than_days` ago."""
    cutoff = services.clock.now() - timedelta(days=older_than_days)
    actor = ActorInfo.system("retention")
    photos = freed = 0
    released = services.db.audits.find(
        {"status": "released", "released_at": {"$lt": cutoff}}, {"_id": 1, "released_at": 1}
    )
    batch: list[Doc] = []
    async for audit in released:
        batch.append(audit)
        if len(batch) >= AUDIT_BATCH:
            n, b = await _purge_audits(services, actor, batch)
            photos, freed, batch = photos + n, freed + b, []
    if batch:
        n, b = await _purge_audits(services, actor, batch)
        photos, freed = photos + n, freed + b
    # Bytes of photos marked in an earlier run that stopped before deleting them.
    async for doc in services.db.photos.find({"purge_pending": True}):
        freed += await _delete_bytes(services, doc)
    return PurgeResult(photos, freed, await tus.purge_expired(services))


async def _purge_audits(services: Services, actor: ActorInfo, audits: list[Doc]) -> tuple[int, int]:
    released_at = {a["_id"]: a.get("released_at") for a in audits}
    photos = freed = 0
    cursor = services.db.photos.find({"audit_id": {"$in": list(released_at)}, "purged": False})
    async for doc in cursor:

        async def mark(uow: UnitOfWork, doc: Doc = doc) -> None:
            # Marked first, bytes deleted after: a crash in between leaves purge_pending for the next run.
            result = await uow.db.photos.update_one(
                {"_id": doc["_id"], "purged": False},
                {"$set": {"purged": True, "purged_at": uow.now, "purge_pending": True}},
                session=uow.session,
            )
            if not result.modified_count:
                return
            when = released_at.get(doc["audit_id"])
            uow.emit(
                PhotoPurged(
                    photo_id=doc["_id"],
                    audit_id=doc["audit_id"],
                    released_at=when.isoformat() if when else None,
                    bytes_freed=int(doc["size"]),
                ),
                subject_type="photo",
                subject_id=doc["_id"],
                audit_id=doc["audit_id"],
                branch_id=doc["branch_id"],
            )
            uow.record(
                "photo.purge",
                "photo",
                doc["_id"],
                {"sha256": doc["sha256"], "size": doc["size"]},
                audit_id=doc["audit_id"],
            )

        await services.transact(actor, mark)
        freed += await _delete_bytes(services, doc)
        photos += 1
    return photos, freed


async def _delete_bytes(services: Services, doc: Doc) -> int:
    freed = 0
    for file_id in store.stored_file_ids(doc):
        freed += await store.delete_file(services.db, file_id)
    await services.db.photos.update_one(
        {"_id": doc["_id"]}, {"$unset": {"purge_pending": ""}, "$set": {"thumbnails": {}, "variants": {}}}
    )
    return freed
