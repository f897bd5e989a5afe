"""Photo evidence commands: add a photo to an audit item or a rectification (checked, deduplicated and
stored by server.photos.pipeline), and remove one from an audit still in progress."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from pydantic import ValidationError

from schemas.photo_events import PhotoDeleted
from schemas.photos import DeviceReport
from server.context import Services, UnitOfWork
from server.db import Doc
from server.domain.access import Principal
from server.errors import Forbidden, InvalidTransition, NotFound, ValidationFailed, field_error
from server.photos import owners
from server.photos.pipeline import StoredPhoto, store_photo
from server.photos.spool import Spool
from server.services import NO_ORIGIN, Origin, actor_of
from server.storage import photos as store

DEVICE_FIELDS = ("client_captured_at", "client_location")


@dataclass(frozen=True)
class AddPhoto:
    owner: owners.Owner  # resolved (and authorized) before the bytes were read
    spool: Spool
    filename: str | None
    device_report: DeviceReport | None = None


def device_report_of(fields: Mapping[str, str], place: list[str | int]) -> DeviceReport | None:
    """The phone's own report of a capture from multipart fields or tus metadata: `client_captured_at` (ISO
    8601 with an offset) and `client_location` (JSON {lat, lon, accuracy_m}); 422 naming a bad one."""
    given = {name: fields[name] for name in DEVICE_FIELDS if fields.get(name)}
    if not given:
        return None
    raw: dict[str, Any] = dict(given)
    if "client_location" in given:
        try:
            raw["client_location"] = json.loads(given["client_location"])
        except ValueError:
            raise ValidationFailed(
                "client_location is not JSON",
                errors=[field_error([*place, "client_location"], 'send {"lat": .., "lon": .., "accuracy_m": ..}')],
            ) from None
    try:
        return DeviceReport.model_validate(raw)
    except ValidationError as exc:
        errors = [field_error([*place, *e["loc"]], e["msg"]) for e in exc.errors()]
        raise ValidationFailed("The device's capture report does not fit", errors=errors) from None


async def add_photo(services: Services, caller: Principal, command: AddPhoto, *,
                    origin: Origin = NO_ORIGIN) -> StoredPhoto:
    """Store the spooled bytes as the owner's photo (the same bytes again: the photo they already are)."""
    report = command.device_report.model_dump(exclude_none=True) if command.device_report else None
    if report and report.get("client_captured_at"):
        report["client_captured_at"] = report["client_captured_at"].astimezone(UTC)
    return await store_photo(
        services, actor_of(caller, origin), command.owner, command.spool, command.filename, report or None
    )


async def delete_photo(services: Services, caller: Principal, photo_id: str, *,
                       origin: Origin = NO_ORIGIN) -> None:
    """The inspector who took a photo removes it while the audit is in progress; evidence is kept after."""
    doc = await store.photo(services.db, photo_id)
    if doc is None or not await owners.can_view_photo(services.db, caller, doc):
        raise NotFound("Photo not found")
    if not caller.is_field or doc["owner_type"] != "audit" or doc["uploader_id"] != caller.user_id:
        raise Forbidden("Only the inspector who took a photo may remove it, while the audit is in progress")
    audit_id = doc["audit_id"]

    async def work(uow: UnitOfWork) -> None:
        if not await store.audit_takes_photos(uow.db, audit_id, owners.UPLOAD_AUDIT_STATUSES, uow.session):
            raise InvalidTransition("The audit was submitted or released; its evidence is retained")
        await store.delete_photo_record(uow.db, doc["_id"], uow.session)
        uow.emit(
            PhotoDeleted(photo_id=doc["_id"], owner_type="audit", audit_id=audit_id, item_id=doc.get("item_id")),
            subject_type="photo",
            subject_id=doc["_id"],
            audit_id=audit_id,
            branch_id=doc["branch_id"],
        )
        uow.record(
            "photo.delete",
            "photo",
            doc["_id"],
            {"sha256": doc["sha256"], "item_id": doc.get("item_id")},
            audit_id=audit_id,
        )

    await services.transact(actor_of(caller, origin), work)
    for file_id in store.stored_file_ids(doc):
        await store.delete_file(services.db, file_id)


def reported_capture(doc: Doc, caller: Principal) -> dict[str, Any]:
    """The phone's own capture report for the photo's metadata: reviewers see it, branch-side roles never."""
    report = doc.get("device_report") or {}
    if caller.is_branch_side or not report:
        return {}
    return {"client_captured_at": report.get("client_captured_at"), "client_location": report.get("client_location")}


__all__ = ["AddPhoto", "add_photo", "delete_photo", "device_report_of", "reported_capture"]
