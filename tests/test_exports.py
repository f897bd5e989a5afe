"""GET /api/v1/exports/* (CSV, XLSX) and GET /api/v1/audits/{id}/report.pdf, opened with real readers."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from gridfs import AsyncGridFSBucket
from openpyxl import load_workbook
from PIL import Image
from pypdf import PdfReader

from server.commands.generate import ensure_checklist
from server.context import Services
from server.reports import tables
from tests.conftest import Api, assert_problem
from tests.report_factories import Org, ReportFactory

WHEN = datetime(2026, 10, 12, 2, 0, tzinfo=UTC)
HALL = ("environment", "env_hall_clean", "major")
SIGNAGE = ("environment", "env_signage_branding", "minor")


async def seed(services: Services) -> tuple[Org, dict[str, Any]]:
    await ensure_checklist(services)
    org = await Org.load(services)
    factory = ReportFactory(services)
    ljz, mad = org.branches["SH-LJZ"], org.branches["MAD-GV"]
    inspector, shopper = org.users["inspector"], org.users["shopper"]
    audits: dict[str, Any] = {}
    specs: tuple[tuple[str, Any, float, Any, list[tuple[str, str, str]], datetime], ...] = (
        ("inspected", ljz, 85.0, inspector, [HALL, SIGNAGE], WHEN),
        ("shopped", ljz, 72.5, shopper, [SIGNAGE], WHEN + timedelta(days=3)),
        ("madrid", mad, 93.0, inspector, [], WHEN + timedelta(days=1)),
    )
    for name, branch, score, auditor, failed, when in specs:
        audit = await factory.submitted(branch, score, started_at=when, auditor=auditor, failed_items=failed)
        await factory.release(audit, when + timedelta(days=1))
        audits[name] = audit
    audits["draft"] = await factory.submitted(ljz, 50.0, started_at=WHEN + timedelta(days=5), auditor=inspector)
    return org, audits


def read_csv(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


async def download(api: Api, path: str, who: str, **kw: Any) -> bytes:
    resp = await api.call("GET", path, who, **kw)
    body = await resp.read()
    assert resp.status == 200, body[:500]
    assert "attachment" in resp.headers["Content-Disposition"]
    return body


async def test_audits_csv_streams_rows_for_the_callers_scope(api: Api, services: Services) -> None:
    _, audits = await seed(services)
    resp = await api.call("GET", "/api/v1/exports/audits.csv", "compliance")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    rows = read_csv(await resp.read())
    # newest first, every status for head office
    assert [r["audit_id"] for r in rows] == [audits[n]["_id"] for n in ("draft", "shopped", "madrid", "inspected")]
    inspected = next(r for r in rows if r["audit_id"] == audits["inspected"]["_id"])
    assert (inspected["branch_code"], inspected["score"], inspected["grade"]) == ("SH-LJZ", "85.0", "B")
    assert (inspected["findings_major"], inspected["findings_minor"], inspected["status"]) == ("1", "1", "released")
    assert inspected["started_at"] == "2026-10-12T02:00:00Z"
    shopped = next(r for r in rows if r["audit_id"] == audits["shopped"]["_id"])
    assert "Sofia Secreta" in shopped["auditor"]

    filtered = read_csv(await download(api, "/api/v1/exports/audits.csv?grade=B&status=released", "compliance"))
    assert [r["audit_id"] for r in filtered] == [audits["inspected"]["_id"]]
    dated = read_csv(
        await download(
            api, "/api/v1/exports/audits.csv?from=2026-10-13T00:00:00Z&to=2026-10-16T00:00:00Z", "compliance"
        )
    )
    assert [r["audit_id"] for r in dated] == [audits["shopped"]["_id"], audits["madrid"]["_id"]]

    head = read_csv(await download(api, "/api/v1/exports/audits.csv", "branch_head"))
    assert [r["audit_id"] for r in head] == [audits["shopped"]["_id"], audits["inspected"]["_id"]]
    assert "started_at" not in head[0] and "flags" not in head[0]
    shopper = (await Org.load(services)).users["shopper"]
    for r in head:
        text = ",".join(r.values())
        assert "Sofia" not in text and shopper["_id"] not in text
        assert shopper["username"] not in r.values()
    assert head[0]["auditor"].startswith("Shopper-")


async def test_findings_exports_in_csv_and_xlsx(api: Api, services: Services) -> None:
    org, audits = await seed(services)
    rows = read_csv(await download(api, "/api/v1/exports/findings.csv?lang=en", "compliance"))
    assert len(rows) == 3
    hall = next(r for r in rows if r["item_id"] == "env_hall_clean")
    assert hall["item_text"] == "The hall floor, counter tops and glass doors are clean and bright"
    assert (hall["audit_id"], hall["severity"], hall["branch_code"]) == (audits["inspected"]["_id"], "major", "SH-LJZ")
    zh = read_csv(
        await download(api, "/api/v1/exports/findings.csv", "compliance", headers={"Accept-Language": "zh-CN,en;q=0.5"})
    )
    assert "营业大厅地面、台面、玻璃门窗干净明亮" in {r["item_text"] for r in zh}

    body = await download(
        api, "/api/v1/exports/findings.xlsx?branch_id=" + org.branches["SH-LJZ"]["_id"], "branch_head"
    )
    sheet = load_workbook(io.BytesIO(body), read_only=True)["findings"]
    table = [list(r) for r in sheet.iter_rows(values_only=True)]
    header, data = table[0], table[1:]
    assert len(data) == 3 and "auditor" in header
    auditor = header.index("auditor")
    assert sorted(str(r[auditor]).split(" ")[0].startswith("Shopper-") for r in data) == [False, False, True]

    body = await download(api, "/api/v1/exports/audits.xlsx?status=released", "compliance")
    sheet = load_workbook(io.BytesIO(body), read_only=True)["audits"]
    table = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert len(table) == 4
    released_at = table[0].index("released_at")
    assert table[1][released_at] == datetime(2026, 10, 16, 2, 0)  # naive UTC in Excel
    resp = await api.call("GET", "/api/v1/exports/audits.csv?branch_id=" + org.branches["MAD-GV"]["_id"], "branch_head")
    assert_problem(resp, await resp.json(), 404)
    resp = await api.call("GET", "/api/v1/exports/audits.xlsx", "inspector")
    assert_problem(resp, await resp.json(), 403)


def test_cell_values_for_csv_and_xlsx() -> None:
    assert tables.cell_text(datetime(2026, 1, 2, 3, 4, tzinfo=UTC)) == "2026-01-02T03:04:00Z"
    assert tables.cell_text([True, "a"]) == "true; a"
    assert tables.cell_value(datetime(2026, 1, 2, tzinfo=UTC)).tzinfo is None


def pdf_text(body: bytes) -> tuple[str, PdfReader]:
    reader = PdfReader(io.BytesIO(body))
    text = "".join(page.extract_text() or "" for page in reader.pages)
    # fpdf2 encodes CFF (OpenType) fonts with an embedded two-byte CMap that pypdf reads one byte at a
    # time, so each glyph comes out preceded by NUL; the ToUnicode map itself is correct.
    return re.sub(r"[\s\x00]+", "", text), reader


async def store_photo(services: Services, audit: dict[str, Any], item_id: str) -> str:
    image = Image.new("RGB", (320, 240), (30, 120, 200))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    bucket = AsyncGridFSBucket(services.db, bucket_name="photos")
    thumb_id = await bucket.upload_from_stream("thumb.jpg", buffer.getvalue())
    photo_id = str(uuid.uuid4())
    await services.db.photos.insert_one(
        {
            "_id": photo_id,
            "owner_type": "audit",
            "audit_id": audit["_id"],
            "item_id": item_id,
            "branch_id": audit["branch_id"],
            "gridfs_id": thumb_id,
            "thumbnails": {"320": thumb_id},
            "purged": False,
            "media_type": "image/jpeg",
        }
    )
    await services.db.findings.update_one(
        {"audit_id": audit["_id"], "item_id": item_id}, {"$set": {"photo_ids": [photo_id]}}
    )
    return photo_id


async def test_audit_pdf_in_the_readers_language_with_photos(api: Api, services: Services) -> None:
    _, audits = await seed(services)
    inspected = audits["inspected"]
    await store_photo(services, inspected, "env_hall_clean")
    resp = await api.call("GET", f"/api/v1/audits/{inspected['_id']}/report.pdf?lang=zh-CN", "compliance")
    assert resp.status == 200 and resp.content_type == "application/pdf"
    text, reader = pdf_text(await resp.read())
    for expected in (
        "审计报告",
        "ShanghaiLujiazui",
        "营业大厅地面、台面、玻璃门窗干净明亮",
        "营业环境",
        "branch-service",
        "85",
        "版本1",
    ):
        assert expected in text, expected
    assert sum(len(page.images) for page in reader.pages) == 1

    resp = await api.call(
        "GET", f"/api/v1/audits/{inspected['_id']}/report.pdf", "compliance", headers={"Accept-Language": "es-ES"}
    )
    text, _ = pdf_text(await resp.read())
    assert "Informedeauditoría" in text and "Elsuelodelvestíbulo" in text


async def test_audit_pdf_hides_the_shopper_and_obeys_scope(api: Api, services: Services) -> None:
    _, audits = await seed(services)
    resp = await api.call("GET", f"/api/v1/audits/{audits['shopped']['_id']}/report.pdf?lang=en", "branch_head")
    assert resp.status == 200
    text, _ = pdf_text(await resp.read())
    assert "Shopper-" in text and "Sofia" not in text and "Auditreport" in text
    resp = await api.call("GET", f"/api/v1/audits/{audits['shopped']['_id']}/report.pdf?lang=en", "compliance")
    text, _ = pdf_text(await resp.read())
    assert "SofiaSecreta" in text
    for name, who, status in (
        ("madrid", "branch_head", 404),
        ("draft", "branch_head", 404),
        ("inspected", "inspector", 403),
    ):
        resp = await api.call("GET", f"/api/v1/audits/{audits[name]['_id']}/report.pdf", who)
        assert_problem(resp, await resp.json(), status)
    resp = await api.call("GET", "/api/v1/audits/no-such-audit/report.pdf", "compliance")
    assert_problem(resp, await resp.json(), 404)
