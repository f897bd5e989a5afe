"""Photo evidence: uploads (multipart and tus), serving with ETag/Range, thumbnails, metadata, deletion."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from schemas.photos import DeviceReport, PhotoList, PhotoPublic, ThumbnailQuery, UploadStatus
from server.context import Services
from server.db import Doc
from server.errors import (
    BadRequest,
    Forbidden,
    InvalidTransition,
    NotFound,
    PayloadTooLarge,
    Problem,
    UnsupportedMediaType,
    ValidationFailed,
    field_error,
)
from server.http import authz
from server.http.api import ApiRouter, json_response, match_info, query_of
from server.http.authz import Principal
from server.http.request_meta import origin
from server.keys import SERVICES
from server.photos import owners, tus
from server.photos.form import UploadForm, read_upload_form
from server.photos.pipeline import StoredPhoto, rejection
from server.photos.serving import stream_file, strong_etag
from server.photos.spool import READ_CHUNK_BYTES, Spool
from server.photos.variants import PhotoGone, ensure_sanitized, ensure_thumbnail
from server.services import appeals as appeal_commands
from server.services import photos as commands
from server.services.photos import device_report_of, reported_capture
from server.storage import photos as store

router = ApiRouter("photos")

FIELD_ROLES = authz.FIELD_ROLES
UPLOADERS = authz.FIELD_ROLES | authz.BRANCH_ROLES
# Branch staff see evidence without where it was taken or with what device.
SANITIZED_ROLES = authz.BRANCH_SIDE
UPLOAD_ERRORS = {
    200: "These bytes were already this owner's photo (a retried upload); the same photo",
    409: "The audit or rectification no longer takes photos",
    413: "File larger than the limit",
    415: "Not a JPEG, PNG, WebP or HEIC/HEIF image",
    422: "Empty, corrupt, truncated or hostile image",
}


def public_photo(doc: Doc, who: Principal) -> dict[str, Any]:
    """A photo's metadata for this caller: no GPS or device for branch roles; for audit evidence, not
    who took it or when either (a covert visit's shopper, or the minute of a visit, identifies a person)."""
    hide = who.role in SANITIZED_ROLES
    hide_visit = hide and doc["owner_type"] == "audit"
    return PhotoPublic(
        id=doc["_id"],
        sha256=doc["sha256"],
        size=doc["size"],
        media_type=doc["media_type"],
        width=doc["width"],
        height=doc["height"],
        owner_type=doc["owner_type"],
        audit_id=doc.get("audit_id"),
        item_id=doc.get("item_id"),
        rectification_id=doc.get("rectification_id"),
        finding_id=doc.get("finding_id"),
        branch_id=doc["branch_id"],
        uploader_id=None if hide_visit else doc["uploader_id"],
        uploaded_at=None if hide_visit else doc["uploaded_at"],
        captured_at=None if hide_visit else doc.get("captured_at"),
        captured_at_source=None if hide_visit else doc.get("captured_at_source"),
        gps=None if hide else doc.get("gps"),
        device=None if hide else doc.get("device"),
        orientation=doc.get("orientation", 1),
        phash=doc["phash"],
        flags=[] if hide_visit else doc.get("flags", []),  # about the auditor, like an audit's own flags
        purged=bool(doc.get("purged")),
        **reported_capture(doc, who),
        url=f"/api/v1/photos/{doc['_id']}",
        thumbnail_url=f"/api/v1/photos/{doc['_id']}/thumbnail",
    ).model_dump(mode="json")


def _stored_response(stored: StoredPhoto, who: Principal) -> web.Response:
    return json_response(
        public_photo(stored.doc, who),
        status=201 if stored.created else 200,
        headers={"Location": f"/api/v1/photos/{stored.doc['_id']}"},
    )


# --- direct uploads ------------------------------------------------------------------------------

MULTIPART_UPLOAD: dict[str, Any] = {
    "raw_body": True,
    "body_content_types": ("multipart/form-data",),
    "response": PhotoPublic,
    "status": 201,
    "extra_responses": UPLOAD_ERRORS,
}

APPEAL_UPLOAD: dict[str, Any] = {
    **MULTIPART_UPLOAD,
    "extra_responses": {
        **UPLOAD_ERRORS,
        409: "The finding is no longer open, already appealed or its appeal window has closed",
    },
}


@router.post(
    "/api/v1/audits/{audit_id}/photos",
    summary="Add a photo to an audit item (multipart: file, item_id; optional client_captured_at, client_location)",
    roles=FIELD_ROLES,
    **MULTIPART_UPLOAD,
)
async def upload_audit_photo(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = authz.principal(request)
    audit = await owners.audit_for_upload(services.db, who, match_info(request, "audit_id"))
    with await read_upload_form(request, services.settings.max_upload_bytes) as form:
        owner = await owners.audit_owner(services.db, audit, form.fields.get("item_id"))
        return await _add(request, who, owner, form)


@router.post(
    "/api/v1/rectifications/{rectification_id}/photos",
    summary="Add 'after' evidence to a rectification (multipart: file; optional client_captured_at, client_location)",
    roles={authz.BRANCH_HEAD},
    **MULTIPART_UPLOAD,
)
async def upload_rectification_photo(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = authz.principal(request)
    owner = await owners.rectification_owner(services.db, who, match_info(request, "rectification_id"))
    with await read_upload_form(request, services.settings.max_upload_bytes) as form:
        return await _add(request, who, owner, form)


@router.post(
    "/api/v1/findings/{finding_id}/appeal-photos",
    summary="Add a photo for an appeal of a finding, to name in the appeal's photo_ids (multipart: file; "
    "optional client_captured_at, client_location)",
    roles={authz.BRANCH_HEAD},
    **APPEAL_UPLOAD,
)
async def upload_appeal_photo(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = authz.principal(request)
    owner = await appeal_commands.appeal_evidence_owner(services, who, match_info(request, "finding_id"))
    with await read_upload_form(request, services.settings.max_upload_bytes) as form:
        return await _add(request, who, owner, form)


async def _add(request: web.Request, who: Principal, owner: owners.Owner, form: UploadForm) -> web.Response:
    command = commands.AddPhoto(owner, form.spool, form.filename, device_report_of(form.fields, ["body"]))
    stored = await commands.add_photo(request.app[SERVICES], who, command, origin=origin(request))
    return _stored_response(stored, who)


# --- reading -------------------------------------------------------------------------------------


async def _visible_photo(request: web.Request) -> tuple[Services, Principal, Doc]:
    services = request.app[SERVICES]
    who = authz.principal(request)
    doc = await store.photo(services.db, match_info(request, "photo_id"))
    if doc is None or not await owners.can_view_photo(services.db, who, doc):
        raise NotFound("Photo not found")
    return services, who, doc


@router.get("/api/v1/audits/{audit_id}/photos", summary="The photos of an audit", response=PhotoList)
async def list_audit_photos(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    who = authz.principal(request)
    audit = await services.db.audits.find_one({"_id": match_info(request, "audit_id")})
    if audit is None or not authz.can_view_audit(who, audit):
        raise NotFound("Audit not found")
    docs = await store.photos_of_audit(services.db, audit["_id"])
    return json_response({"items": [public_photo(d, who) for d in docs if d["owner_type"] == "audit"]})


@router.get(
    "/api/v1/photos/{photo_id}",
    summary="A photo's bytes (sanitized and upright for branch roles)",
    response_content_type="image/*",
    extra_responses={
        206: "Partial content (Range)",
        304: "Not modified (If-None-Match)",
        410: "Bytes removed by the retention policy",
        416: "Range not satisfiable",
    },
)
async def get_photo(request: web.Request) -> web.StreamResponse:
    services, who, doc = await _visible_photo(request)
    if doc.get("purged"):
        raise PhotoGone("This photo's bytes were removed by the retention policy; its metadata remains")
    disposition = {"Content-Disposition": f'inline; filename="{doc["_id"]}"', "Vary": "Authorization"}
    if who.role in SANITIZED_ROLES:
        variant = await ensure_sanitized(services, doc)
        return await stream_file(
            request,
            services.db,
            variant["gridfs_id"],
            variant["size"],
            variant["media_type"],
            strong_etag(doc["sha256"], "sanitized"),
            disposition,
        )
    return await stream_file(
        request,
        services.db,
        doc["gridfs_id"],
        doc["size"],
        doc["media_type"],
        strong_etag(doc["sha256"], "original"),
        disposition,
    )


@router.get(
    "/api/v1/photos/{photo_id}/thumbnail",
    summary="A JPEG thumbnail (size=320 or 1280)",
    query=ThumbnailQuery,
    response_content_type="image/jpeg",
    extra_responses={304: "Not modified (If-None-Match)", 410: "Bytes removed by the retention policy"},
)
async def get_thumbnail(request: web.Request) -> web.StreamResponse:
    services, _who, doc = await _visible_photo(request)
    size = query_of(request, ThumbnailQuery).size
    if doc.get("purged"):
        raise PhotoGone("This photo's bytes were removed by the retention policy; its metadata remains")
    file_id = await ensure_thumbnail(services, doc, size)
    stored = await services.db[f"{store.BUCKET}.files"].find_one({"_id": file_id}, {"length": 1})
    if stored is None:
        raise Problem("Thumbnail missing after it was made")
    return await stream_file(
        request,
        services.db,
        file_id,
        int(stored["length"]),
        "image/jpeg",
        strong_etag(doc["sha256"], f"thumb{size}"),
        {"Vary": "Authorization"},
    )


@router.get(
    "/api/v1/photos/{photo_id}/meta",
    summary="A photo's metadata (no GPS or device for branch roles)",
    response=PhotoPublic,
)
async def get_photo_meta(request: web.Request) -> web.Response:
    _services, who, doc = await _visible_photo(request)
    return json_response(public_photo(doc, who))


# --- deletion ------------------------------------------------------------------------------------


@router.delete(
    "/api/v1/photos/{photo_id}",
    summary="Remove a photo from an audit still in progress (its uploader)",
    roles=FIELD_ROLES | {authz.BRANCH_HEAD, authz.REGIONAL_MANAGER, authz.ADMIN, authz.COMPLIANCE},
    status=204,
    extra_responses={409: "The audit was submitted or released: evidence is retained"},
)
async def delete_photo(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    await commands.delete_photo(
        services, authz.principal(request), match_info(request, "photo_id"), origin=origin(request)
    )
    return web.Response(status=204)


# --- tus 1.0 resumable uploads ---------------------------------------------------------------------


@router.route(
    "OPTIONS",
    tus.UPLOADS_PATH,
    summary="tus discovery: versions, extensions, maximum size",
    roles=None,
    status=204,
)
async def tus_options(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    return web.Response(
        status=204,
        headers={
            "Tus-Version": tus.TUS_VERSION,
            "Tus-Extension": tus.TUS_EXTENSIONS,
            "Tus-Max-Size": str(services.settings.max_upload_bytes),
        },
    )


@router.post(
    tus.UPLOADS_PATH,
    summary="tus creation: Upload-Length and Upload-Metadata (audit_id + item_id, or "
    "rectification_id; filename; the phone's client_captured_at and client_location JSON), base64 values",
    roles=UPLOADERS,
    status=201,
    raw_body=True,
    body_content_types=(tus.OFFSET_CONTENT_TYPE,),
    extra_responses={412: "Tus-Resumable is not 1.0.0", 413: "Upload-Length above Tus-Max-Size"},
)
async def tus_create(request: web.Request) -> web.Response:
    tus.require_tus_version(request)
    services = request.app[SERVICES]
    who = authz.principal(request)
    if "Upload-Defer-Length" in request.headers:
        raise BadRequest("Upload-Defer-Length is not supported; send Upload-Length")
    length = tus.header_int(request, "Upload-Length")
    limit = services.settings.max_upload_bytes
    if length > limit:
        raise PayloadTooLarge(
            f"Upload-Length is above the {limit} bytes allowed",
            errors=[field_error(["body", "file"], f"larger than {limit} bytes")],
        )
    if length == 0:
        raise rejection(422, "is empty (zero bytes)")
    metadata = tus.parse_metadata(request.headers.get("Upload-Metadata"))
    owner = await _metadata_owner(services, who, metadata)
    report = device_report_of(metadata, ["header", "Upload-Metadata"])
    doc = tus.new_upload(
        user_id=who.user_id,
        owner=owner,
        filename=metadata.get("filename"),
        length=length,
        now=services.clock.now(),
    )
    doc["device_report"] = report.model_dump(mode="json") if report else None
    await services.db.uploads.insert_one(doc)
    return web.Response(status=201, headers={"Location": f"{tus.UPLOADS_PATH}/{doc['_id']}"})


async def _metadata_owner(services: Services, who: Principal, metadata: dict[str, str]) -> dict[str, Any]:
    """Check, at creation, that the caller may add a photo where the metadata says."""
    if metadata.get("rectification_id"):
        rect = await owners.rectification_owner(services.db, who, metadata["rectification_id"])
        return {
            "owner_type": "rectification",
            "rectification_id": rect.owner_id,
            "audit_id": rect.audit_id,
            "item_id": None,
        }
    if not metadata.get("audit_id"):
        raise ValidationFailed(
            "Upload-Metadata must name audit_id and item_id, or rectification_id",
            errors=[field_error(["header", "Upload-Metadata"], "audit_id or rectification_id")],
        )
    if who.role not in FIELD_ROLES:
        raise Forbidden("Only inspectors and mystery shoppers add photos to audits")
    audit = await owners.audit_for_upload(services.db, who, metadata["audit_id"])
    owner = await owners.audit_owner(services.db, audit, metadata.get("item_id"))
    return {
        "owner_type": "audit",
        "audit_id": owner.owner_id,
        "item_id": owner.item_id,
        "rectification_id": None,
    }


def _progress_headers(upload: Doc, offset: int) -> dict[str, str]:
    headers = {"Upload-Offset": str(offset), "Cache-Control": "no-store"}
    if upload.get("photo_id"):
        headers["Photo-Id"] = upload["photo_id"]
        headers["Photo-Location"] = f"/api/v1/photos/{upload['photo_id']}"
    return headers


@router.route(
    "HEAD",
    tus.UPLOADS_PATH + "/{upload_id}",
    summary="tus: how many bytes are stored (Upload-Offset)",
    roles=UPLOADERS,
    extra_responses={412: "Tus-Resumable is not 1.0.0"},
)
async def tus_head(request: web.Request) -> web.Response:
    tus.require_tus_version(request)
    services = request.app[SERVICES]
    upload = await tus.upload_of(services, match_info(request, "upload_id"), authz.principal(request).user_id)
    return web.Response(
        status=200,
        headers={**_progress_headers(upload, upload["offset"]), "Upload-Length": str(upload["length"])},
    )


@router.patch(
    tus.UPLOADS_PATH + "/{upload_id}",
    summary="tus: append bytes at Upload-Offset",
    roles=UPLOADERS,
    status=204,
    raw_body=True,
    body_content_types=(tus.OFFSET_CONTENT_TYPE,),
    extra_responses={
        409: "Upload-Offset differs from the stored offset",
        412: "Tus-Resumable is not 1.0.0",
        413: "Bytes past Upload-Length",
        415: "Not application/offset+octet-stream",
        422: "The completed upload is not an acceptable image",
    },
)
async def tus_patch(request: web.Request) -> web.Response:
    tus.require_tus_version(request)
    services = request.app[SERVICES]
    who = authz.principal(request)
    upload = await tus.upload_of(services, match_info(request, "upload_id"), who.user_id)
    if request.content_type != tus.OFFSET_CONTENT_TYPE:
        raise UnsupportedMediaType(f"PATCH bodies are {tus.OFFSET_CONTENT_TYPE}")
    offset = tus.header_int(request, "Upload-Offset")
    if offset != upload["offset"]:
        raise tus.OffsetMismatch(f"Upload-Offset {offset} differs from the {upload['offset']} bytes stored")
    if upload["status"] == "complete":
        return web.Response(status=204, headers=_progress_headers(upload, offset))
    if upload["status"] == "rejected":
        raise InvalidTransition(f"This upload was refused: {(upload.get('problem') or {}).get('detail', '')}")
    if request.content_length is not None and offset + request.content_length > upload["length"]:
        raise PayloadTooLarge(f"The body goes past Upload-Length ({upload['length']} bytes)")
    offset, interrupted = await tus.receive(
        services, upload, offset, lambda: request.content.read(READ_CHUNK_BYTES)
    )
    if not interrupted and offset == upload["length"]:
        upload = await _complete(request, services, who, upload)
    return web.Response(status=204, headers=_progress_headers(upload, offset))


async def _complete(request: web.Request, services: Services, who: Principal, upload: Doc) -> Doc:
    """All bytes are in: the same checks and storage as a direct upload, then the pieces are dropped."""
    if upload["owner_type"] == "audit":
        audit = await owners.audit_for_upload(services.db, who, upload["audit_id"])
        owner = await owners.audit_owner(services.db, audit, upload.get("item_id"))
    else:
        owner = await owners.rectification_owner(services.db, who, upload["rectification_id"])
    with Spool(services.settings.max_upload_bytes) as spool:
        await tus.assemble(services, upload, spool)
        try:
            report = DeviceReport.model_validate(upload["device_report"]) if upload.get("device_report") else None
            command = commands.AddPhoto(owner, spool, upload.get("filename"), report)
            stored = await commands.add_photo(services, who, command, origin=origin(request))
        except Problem as problem:
            if problem.status in (415, 422):
                await tus.finish(services, upload, photo_id=None, problem=problem.body())
            raise
    await tus.finish(services, upload, photo_id=stored.doc["_id"], problem=None)
    return {**upload, "status": "complete", "photo_id": stored.doc["_id"]}


@router.delete(
    tus.UPLOADS_PATH + "/{upload_id}",
    summary="tus termination: discard an upload",
    roles=UPLOADERS,
    status=204,
    extra_responses={412: "Tus-Resumable is not 1.0.0"},
)
async def tus_delete(request: web.Request) -> web.Response:
    tus.require_tus_version(request)
    services = request.app[SERVICES]
    upload = await tus.upload_of(services, match_info(request, "upload_id"), authz.principal(request).user_id)
    await tus.terminate(services, upload)
    return web.Response(status=204)


@router.get(
    tus.UPLOADS_PATH + "/{upload_id}",
    summary="An upload's progress and the photo it became",
    roles=UPLOADERS,
    response=UploadStatus,
)
async def upload_status(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    upload = await tus.upload_of(services, match_info(request, "upload_id"), authz.principal(request).user_id)
    body = UploadStatus(
        id=upload["_id"],
        status=upload["status"],
        offset=upload["offset"],
        length=upload["length"],
        owner_type=upload["owner_type"],
        audit_id=upload.get("audit_id"),
        item_id=upload.get("item_id"),
        rectification_id=upload.get("rectification_id"),
        filename=upload.get("filename"),
        photo_id=upload.get("photo_id"),
        problem=upload.get("problem"),
        created_at=upload["created_at"],
        expires_at=upload["expires_at"],
    )
    return json_response(body, headers={"Cache-Control": "no-store"})
