"""Reading a multipart photo upload (fields `file` and `item_id`) into a spool, never whole into memory."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from server.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, ValidationFailed, field_error
from server.photos.spool import READ_CHUNK_BYTES, Spool

# Multipart boundaries, part headers and the item_id field on top of the file itself.
FORM_OVERHEAD_BYTES = 64 * 1024
MAX_TEXT_FIELD_BYTES = 256
# item_id; and what the phone reports of the capture (server.services.photos.device_report_of).
TEXT_FIELDS = ("item_id", "client_captured_at", "client_location")


@dataclass
class UploadForm:
    spool: Spool
    filename: str | None
    fields: dict[str, str]

    def __enter__(self) -> UploadForm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.spool.close()


async def read_upload_form(request: web.Request, limit: int) -> UploadForm:
    """Stream the form's file into a spool (413 the moment it passes `limit`, reading no further)."""
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType(
            "Send the photo as multipart/form-data with a field named file",
            errors=[field_error(["body", "file"], "expected multipart/form-data")],
        )
    if request.content_length is not None and request.content_length > limit + FORM_OVERHEAD_BYTES:
        raise PayloadTooLarge(
            f"The file is larger than the {limit} bytes allowed",
            errors=[field_error(["body", "file"], f"larger than {limit} bytes")],
        )
    spool = Spool(limit)
    form = UploadForm(spool, None, {})
    seen_file = False
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise ValidationFailed(
                    "Nested multipart is not accepted", errors=[field_error(["body"], "nested multipart")]
                )
            if part.name == "file":
                if seen_file:
                    raise ValidationFailed(
                        "Send one file per request",
                        errors=[field_error(["body", "file"], "more than one file")],
                    )
                seen_file = True
                form.filename = part.filename
                while chunk := await part.read_chunk(READ_CHUNK_BYTES):
                    spool.write(chunk)
            elif part.name in TEXT_FIELDS:
                form.fields[part.name] = await _small_text(part)
            else:
                raise ValidationFailed(
                    f"Unknown form field {part.name!r}",
                    errors=[field_error(["body", str(part.name)], "unknown field")],
                )
        if not seen_file:
            raise ValidationFailed("The file is missing", errors=[field_error(["body", "file"], "required")])
    except (ValueError, HttpProcessingError, AssertionError) as exc:
        spool.close()
        raise BadRequest(f"Malformed multipart body ({str(exc)[:100]})") from None
    except BaseException:
        spool.close()
        raise
    return form


async def _small_text(part: BodyPartReader) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(MAX_TEXT_FIELD_BYTES):
        data += chunk
        if len(data) > MAX_TEXT_FIELD_BYTES:
            raise ValidationFailed(
                f"{part.name} is too long", errors=[field_error(["body", str(part.name)], "too long")]
            )
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValidationFailed(
            f"{part.name} is not UTF-8", errors=[field_error(["body", str(part.name)], "not UTF-8")]
        ) from None
