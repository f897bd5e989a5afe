"""Streaming CSV and XLSX exports: rows go out in small batches, never the whole table in memory."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import tempfile
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web
from openpyxl import Workbook

CSV_FLUSH_ROWS = 500  # rows buffered before a chunk is written to the client
XLSX_BATCH_ROWS = 1000  # rows handed to the worker thread at a time
FILE_CHUNK_BYTES = 64 * 1024
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Excel only recognises UTF-8 CSV (and so the Chinese names) with a byte order mark.
UTF8_BOM = "\ufeff"


def cell_text(value: Any) -> str:
    """A value as CSV text: times in RFC 3339 UTC, lists joined, booleans lower-case."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "; ".join(cell_text(v) for v in value)
    return str(value)


def cell_value(value: Any) -> Any:
    """A value as an XLSX cell: Excel has no time zones, so times become naive UTC."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, list | tuple):
        return "; ".join(cell_text(v) for v in value)
    if isinstance(value, dict):
        return cell_text(list(value.values()))
    return value


def attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"}


async def stream_csv(
    request: web.Request,
    filename: str,
    header: Sequence[str],
    rows: AsyncIterator[Sequence[Any]],
    flush_every: int = CSV_FLUSH_ROWS,
) -> web.StreamResponse:
    """Write a CSV as a chunked response, flushing every `flush_every` rows; returns the prepared response."""
    response = web.StreamResponse(headers={"Content-Type": CSV_MEDIA_TYPE, **attachment(filename)})
    response.enable_chunked_encoding()
    await response.prepare(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write(UTF8_BOM)
    writer.writerow(header)
    pending = 0
    async for row in rows:
        writer.writerow([cell_text(v) for v in row])
        pending += 1
        if pending >= flush_every:
            await response.write(buffer.getvalue().encode())
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    await response.write(buffer.getvalue().encode())
    await response.write_eof()
    return response


def _append_rows(sheet: Any, rows: list[Sequence[Any]]) -> None:
    for row in rows:
        sheet.append([cell_value(v) for v in row])


async def stream_xlsx(
    request: web.Request,
    filename: str,
    sheet_title: str,
    header: Sequence[str],
    rows: AsyncIterator[Sequence[Any]],
    batch_rows: int = XLSX_BATCH_ROWS,
) -> web.StreamResponse:
    """Build the workbook in write-only mode into a temporary file (openpyxl's write-only sheets keep no
    rows in memory), then stream the file in chunks. Workbook work runs in a thread."""
    loop = asyncio.get_running_loop()
    handle, path = tempfile.mkstemp(prefix="export-", suffix=".xlsx")
    os.close(handle)
    try:
        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet(title=sheet_title[:31])
        sheet.append(list(header))
        batch: list[Sequence[Any]] = []
        async for row in rows:
            batch.append(row)
            if len(batch) >= batch_rows:
                await loop.run_in_executor(None, _append_rows, sheet, batch)
                batch = []
        await loop.run_in_executor(None, _append_rows, sheet, batch)
        await loop.run_in_executor(None, workbook.save, path)
        size = (await loop.run_in_executor(None, os.stat, path)).st_size
        response = web.StreamResponse(headers={"Content-Type": XLSX_MEDIA_TYPE, **attachment(filename)})
        response.content_length = size
        await response.prepare(request)
        with open(path, "rb") as file:  # noqa: ASYNC230 - local temp file, read in 64 KiB chunks
            while chunk := file.read(FILE_CHUNK_BYTES):
                await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        os.unlink(path)
