"""The one path every photo takes into storage: sniff, dedup, decode in the executor, flag, GridFS, commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pymongo.errors import DuplicateKeyError

from schemas.photo_events import PhotoUploaded
from server.context import ActorInfo, Services, UnitOfWork
from server.db import Doc
from server.errors import InvalidTransition, Problem, UnsupportedMediaType, ValidationFailed, field_error
from server.images.executor import run_image_work
from server.images.inspect import ImageFacts, ImageRejected, inspect_image
from server.images.sniffing import sniff
from server.photos import fraud
from server.photos.owners import UPLOAD_AUDIT_STATUSES, UPLOAD_RECTIFICATION_STATUSES, Owner
from server.photos.spool import Spool
from server.storage import photos as store

log = logging.getLogger("branch_audit.photos")


@dataclass(frozen=True)
class StoredPhoto:
    doc: Doc
    created: bool  # False: these bytes were already this owner's photo (a retried upload)


def rejection(status: int, reason: str, field: str = "file") -> Problem:
    """The problem+json for an upload that is not an acceptable image, naming the field."""
    errors = [field_error(["body", field], reason)]
    if status == 415:
        return UnsupportedMediaType(f"The {field} {reason}", errors=errors)
    return ValidationFailed(f"The {field} {reason}", errors=errors)


def _inspect_spool(spool: Spool) -> ImageFacts:
    return inspect_image(spool.read_all())


async def store_photo(
    services: Services,
    actor: ActorInfo,
    owner: Owner,
    spool: Spool,
    filename: str | None,
    device_report: dict[str, Any] | None = None,
) -> StoredPhoto:
    """Validate and store the spooled bytes as `owner`'s photo (or return the photo they already are).

    The bytes are written to GridFS chunks while the executor checks the image; the GridFS file only comes
    into being (its files document) in the transaction that records the photo, and the chunks are removed
    whenever the upload is refused or fails, so nothing is stored unless the photo is."""
    if spool.size == 0:
        raise rejection(422, "is empty (zero bytes)")
    media_type = sniff(spool.head)
    if media_type is None:
        raise rejection(415, "is not a JPEG, PNG, WebP or HEIC/HEIF image (judged from its bytes)")
    key = store.dedup_key(owner.owner_type, owner.owner_id, owner.item_id, spool.sha256)
    holders = await store.holders_of_bytes(services.db, spool.sha256)
    if any(holder.get("dedup_key") == key for holder in holders):
        existing = await store.by_dedup_key(services.db, key)  # a retried upload (rare): the photo it made
        if existing is not None:
            return StoredPhoto(existing, created=False)
    same_bytes_elsewhere = any(holder.get("owner_key") != owner.key for holder in holders)

    photo_id = str(uuid.uuid4())
    gridfs_id = _original_file_id(photo_id)
    writing = asyncio.create_task(store.write_chunks(services.db, gridfs_id, spool.read_at, spool.size))
    try:
        try:
            facts = await run_image_work(services.shared, _inspect_spool, spool)
        except ImageRejected as exc:
            raise rejection(exc.status, exc.reason) from None
        now = services.clock.now()
        doc = await _photo_document(
            services, owner, facts, spool, key, photo_id, actor, now, filename, same_bytes_elsewhere
        )
        # What the phone said of the capture, kept apart from the EXIF facts: a weaker signal (browsers strip
        # GPS from uploads, and the phone's clock may be wrong), shown to reviewers only.
        doc["device_report"] = device_report
        await writing
        file_doc = store.file_document(
            gridfs_id,
            spool.size,
            doc["filename"],
            {"photo_id": photo_id, "kind": "original", "media_type": media_type, "sha256": spool.sha256},
            now,
        )

        async def work(uow: UnitOfWork) -> None:
            await _attach(uow, owner, doc)
            await store.insert_file_document(uow.db, file_doc, uow.session)
            await store.insert_photo(uow.db, doc, uow.session)
            uow.emit(
                PhotoUploaded(
                    photo_id=photo_id,
                    owner_type=owner.owner_type,
                    audit_id=owner.audit_id,
                    rectification_id=doc.get("rectification_id"),
                    item_id=owner.item_id,
                    sha256=spool.sha256,
                    flags=doc["flags"],
                ),
                subject_type="photo",
                subject_id=photo_id,
                audit_id=owner.audit_id,
                rectification_id=doc.get("rectification_id"),
                branch_id=doc["branch_id"],
            )
            uow.record(
                "photo.upload",
                "photo",
                photo_id,
                {"sha256": spool.sha256, "size": spool.size, "item_id": owner.item_id, "flags": doc["flags"]},
                audit_id=owner.audit_id,
                rectification_id=doc.get("rectification_id"),
            )

        await services.transact(actor, work)
    except DuplicateKeyError:
        # The same bytes arrived twice at once: the other request's photo is the photo.
        await _discard(services, writing, gridfs_id)
        existing = await store.by_dedup_key(services.db, key)
        if existing is None:
            raise
        return StoredPhoto(existing, created=False)
    except BaseException:
        # Shielded: a client hanging up mid-upload still leaves no chunks behind.
        await asyncio.shield(_discard(services, writing, gridfs_id))
        raise
    return StoredPhoto(doc, created=True)


async def _discard(services: Services, writing: asyncio.Task[None], gridfs_id: str) -> None:
    """Remove what an upload wrote, once its chunk writer has stopped (so no chunk lands afterwards)."""
    with contextlib.suppress(Exception):
        await writing
    await store.discard_file(services.db, gridfs_id)


def _original_file_id(photo_id: str) -> str:
    return f"photo:{photo_id}"


async def _attach(uow: UnitOfWork, owner: Owner, doc: Doc) -> None:
    """Record the photo on its owner, refusing if the owner moved on meanwhile (submitted, verified...).

    An audit is updated only if it still takes photos, in one command (store.attach_to_audit). Other owners'
    status is read by `_id` inside this transaction and the owner then updated by `_id` alone (secantusd-py
    scans the collection for a filter of two fields): a change committed by another transaction since this
    one's snapshot makes that update conflict, so the whole upload is retried."""
    flags = doc["flags"]
    if owner.owner_type == "audit":
        if not await store.attach_to_audit(uow.db, owner.owner_id, flags, UPLOAD_AUDIT_STATUSES, uow.session):
            raise InvalidTransition("The audit is no longer in progress; the photo was not added")
        return
    if owner.owner_type == "appeal":
        finding = await uow.db.findings.find_one({"_id": owner.owner_id}, {"status": 1, "pending_appeal_id": 1},
                                                 session=uow.session)
        if finding is None or finding.get("status") != "open" or finding.get("pending_appeal_id"):
            raise InvalidTransition("The finding can no longer be appealed; the photo was not added")
        return
    rect = await uow.db.rectifications.find_one({"_id": owner.owner_id}, {"status": 1}, session=uow.session)
    if rect is None or rect.get("status") not in UPLOAD_RECTIFICATION_STATUSES:
        raise InvalidTransition("The rectification is no longer open; the photo was not added")
    add: dict[str, Any] = {"photo_ids": doc["_id"]}
    if flags:
        add["flags"] = {"$each": flags}
    await uow.db.rectifications.update_one({"_id": owner.owner_id}, {"$addToSet": add}, session=uow.session)


async def _photo_document(
    services: Services,
    owner: Owner,
    facts: ImageFacts,
    spool: Spool,
    key: str,
    photo_id: str,
    actor: ActorInfo,
    now: datetime,
    filename: str | None,
    same: bool,
) -> Doc:
    branch = owner.branch
    captured_at, source = fraud.capture_time(
        facts.captured_local, facts.captured_offset, branch.get("timezone")
    )
    bands = fraud.phash_bands(facts.phash)
    near = False
    if not same:
        candidates = await store.near_duplicate_candidates(services.db, bands, owner.key)
        near = any(fraud.is_near_duplicate(facts.phash, other) for other in candidates)
    location = branch.get("location") or {}
    audit = owner.audit if owner.owner_type == "audit" else None
    flags = fraud.photo_flags(
        fraud.PhotoFacts(
            has_exif=facts.has_exif,
            captured_at=captured_at,
            uploaded_at=now,
            gps=facts.gps,
            branch_location=(location["lat"], location["lon"]) if "lat" in location else None,
            geofence_m=branch.get("geofence_m"),
            visit_start=_visit_start(audit),
            visit_end=(audit.get("submitted_at") or now) if audit else None,
            window_start=await _window_start(services, audit, branch),
            same_bytes_elsewhere=same,
            near_duplicate_elsewhere=near,
        )
    )
    gps = {"lat": facts.gps[0], "lon": facts.gps[1]} if facts.gps else None
    device = (
        {"make": facts.device_make, "model": facts.device_model}
        if facts.device_make or facts.device_model
        else None
    )
    return {
        "_id": photo_id,
        "sha256": spool.sha256,
        "size": spool.size,
        "media_type": facts.media_type,
        "width": facts.width,
        "height": facts.height,
        "gridfs_id": _original_file_id(photo_id),
        "filename": _safe_filename(filename, photo_id),
        "owner_type": owner.owner_type,
        "owner_key": owner.key,
        "dedup_key": key,
        "audit_id": owner.audit_id,
        "item_id": owner.item_id,
        "rectification_id": owner.owner_id if owner.owner_type == "rectification" else None,
        "finding_id": owner.owner_id if owner.owner_type == "appeal" else None,
        "branch_id": branch["_id"],
        "region_id": branch.get("region_id"),
        "uploader_id": actor.user_id,
        "uploader_role": actor.role,
        "uploaded_at": now,
        "captured_at": captured_at,
        "captured_at_source": source,
        "gps": gps,
        "device": device,
        "orientation": facts.orientation,
        "phash": facts.phash,
        "phash_bands": bands,
        "flags": flags,
        "thumbnails": {},
        "variants": {},
        "purged": False,
    }


def _visit_start(audit: Doc | None) -> datetime | None:
    if audit is None:
        return None
    checkin = audit.get("checkin") or {}
    start = audit.get("started_at") or checkin.get("at")
    return _aware(start) if isinstance(start, datetime) else None


async def _window_start(services: Services, audit: Doc | None, branch: Doc) -> datetime | None:
    """When the assignment's visit window opened (a date is the start of that day at the branch)."""
    if audit is None or not audit.get("assignment_id"):
        return None
    assignment = await services.db.assignments.find_one({"_id": audit["assignment_id"]}, {"window_start": 1})
    value = (assignment or {}).get("window_start")
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, str):
        try:
            day = datetime.fromisoformat(value)
        except ValueError:
            return None
        if day.tzinfo is not None:
            return day.astimezone(UTC)
        try:
            zone = ZoneInfo(branch.get("timezone") or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        return datetime.combine(day.date(), time(0), zone).astimezone(UTC)
    return None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _safe_filename(filename: str | None, photo_id: str) -> str:
    cleaned = "".join(ch for ch in (filename or "") if ch.isalnum() or ch in "._- ")[:100].strip()
    return cleaned or f"{photo_id}"
