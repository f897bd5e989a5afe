"""One audit as a PDF in the reader's language (fpdf2; CPU work, run it in an executor)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from fpdf import FPDF
from fpdf.enums import XPos, YPos

# Noto Sans CJK (SIL OFL) shipped in a PyPI package, so zh-CN prints without system fonts; it also
# covers Latin with accents, so one face serves every language.
FONT_PACKAGE = "cvttf_NotoSansCJK_Regular"
FONT_FILE = "NotoSansCJKtc-Regular.otf"
FONT = "noto-cjk"
MAX_THUMBNAILS_PER_FINDING = 3
THUMB_WIDTH_MM = 40

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Audit report",
        "branch": "Branch",
        "region": "Region",
        "checklist": "Checklist",
        "version": "version",
        "status": "Status",
        "released_at": "Released",
        "auditor": "Auditor",
        "score": "Score",
        "grade": "Grade",
        "critical_failed": "Critical failure",
        "yes": "yes",
        "no": "no",
        "sections": "Score by section",
        "section": "Section",
        "points": "Points",
        "findings": "Findings",
        "no_findings": "No findings.",
        "severity": "Severity",
        "rectification": "Rectification",
        "due": "due",
        "none": "none",
        "note": "Note",
        "generated": "Generated",
        "page": "Page",
        "minor": "minor",
        "major": "major",
        "critical": "critical",
        "open": "open",
        "overturned": "overturned",
        "submitted": "submitted",
        "verified": "verified",
        "rejected": "rejected",
        "cancelled": "cancelled",
        "released": "released",
        "in_progress": "in progress",
        "returned": "returned",
        "photos": "Photos",
    },
    "zh-CN": {
        "title": "审计报告",
        "branch": "网点",
        "region": "区域",
        "checklist": "检查表",
        "version": "版本",
        "status": "状态",
        "released_at": "发布时间",
        "auditor": "检查人",
        "score": "得分",
        "grade": "等级",
        "critical_failed": "红线失败",
        "yes": "是",
        "no": "否",
        "sections": "分项得分",
        "section": "分项",
        "points": "分值",
        "findings": "问题",
        "no_findings": "无问题。",
        "severity": "严重程度",
        "rectification": "整改",
        "due": "截止",
        "none": "无",
        "note": "备注",
        "generated": "生成时间",
        "page": "页",
        "minor": "轻微",
        "major": "重大",
        "critical": "严重",
        "open": "有效",
        "overturned": "已撤销",
        "submitted": "已提交",
        "verified": "已验证",
        "rejected": "已退回",
        "cancelled": "已取消",
        "released": "已发布",
        "in_progress": "进行中",
        "returned": "已退回",
        "photos": "照片",
    },
    "es": {
        "title": "Informe de auditoría",
        "branch": "Oficina",
        "region": "Región",
        "checklist": "Lista de control",
        "version": "versión",
        "status": "Estado",
        "released_at": "Publicada",
        "auditor": "Auditor",
        "score": "Puntuación",
        "grade": "Calificación",
        "critical_failed": "Fallo crítico",
        "yes": "sí",
        "no": "no",
        "sections": "Puntuación por sección",
        "section": "Sección",
        "points": "Puntos",
        "findings": "Hallazgos",
        "no_findings": "Sin hallazgos.",
        "severity": "Gravedad",
        "rectification": "Subsanación",
        "due": "vence",
        "none": "ninguna",
        "note": "Nota",
        "generated": "Generado",
        "page": "Página",
        "minor": "leve",
        "major": "grave",
        "critical": "crítico",
        "open": "abierto",
        "overturned": "anulado",
        "submitted": "enviada",
        "verified": "verificada",
        "rejected": "rechazada",
        "cancelled": "cancelada",
        "released": "publicada",
        "in_progress": "en curso",
        "returned": "devuelta",
        "photos": "Fotos",
    },
}


@dataclass
class FindingEntry:
    item_text: str
    section_title: str
    severity: str
    status: str
    note: str | None
    rectification_status: str | None
    rectification_due: datetime | None
    thumbnails: list[bytes] = field(default_factory=list)


@dataclass
class SectionEntry:
    title: str
    score: float | None
    points: float | None
    max: float | None


@dataclass
class AuditReportData:
    """Everything the PDF shows, already filtered for the reader (no shopper identity for branch roles)."""

    language: str
    audit_id: str
    branch: str
    region: str
    timezone: str
    checklist_key: str
    checklist_version: int
    checklist_title: str
    status: str
    released_at: datetime | None
    auditor: str
    score: float | None
    grade: str | None
    critical_failed: bool
    sections: list[SectionEntry]
    findings: list[FindingEntry]
    generated_at: datetime


@cache
def font_path() -> Path:
    return Path(str(resources.files(FONT_PACKAGE).joinpath(FONT_FILE)))


def labels_for(language: str) -> dict[str, str]:
    return LABELS.get(language, LABELS["en"])


class _ReportPdf(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(format="A4")
        self.footer_text = footer_text

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, size=8)
        self.cell(0, 6, f"{self.footer_text}  ·  {self.page_no()}/{{nb}}", align="C")


def _local(moment: datetime | None, timezone: str) -> str:
    if moment is None:
        return "-"
    try:
        zone = ZoneInfo(timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def render_audit_pdf(report: AuditReportData) -> bytes:
    """The PDF bytes of one audit report."""
    t = labels_for(report.language)

    def word(key: str) -> str:
        return t.get(key, key)  # status words without a translation print as themselves

    pdf = _ReportPdf(
        f"{t['title']} {report.audit_id} · {t['generated']} {_local(report.generated_at, report.timezone)}"
    )
    pdf.add_font(FONT, fname=str(font_path()))
    pdf.alias_nb_pages()
    pdf.set_auto_page_break(auto=True, margin=16)
    pdf.add_page()
    width = pdf.epw

    def line(text: str, size: float = 10, height: float = 6) -> None:
        pdf.set_font(FONT, size=size)
        pdf.multi_cell(width, height, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    line(f"{t['title']} · {report.branch}", size=16, height=9)
    line(f"{t['region']}: {report.region}")
    line(
        f"{t['checklist']}: {report.checklist_title} ({report.checklist_key}, {t['version']} "
        f"{report.checklist_version})"
    )
    line(f"{t['status']}: {word(report.status)}    {t['released_at']}: {_local(report.released_at, report.timezone)}")
    line(f"{t['auditor']}: {report.auditor}")
    line(
        f"{t['score']}: {_number(report.score)}    {t['grade']}: {report.grade or '-'}    "
        f"{t['critical_failed']}: {t['yes'] if report.critical_failed else t['no']}",
        size=12,
        height=8,
    )
    pdf.ln(3)

    line(t["sections"], size=13, height=8)
    pdf.set_font(FONT, size=10)
    columns = (width * 0.55, width * 0.2, width * 0.25)
    for text, col in zip((t["section"], t["score"], t["points"]), columns, strict=True):
        pdf.cell(col, 7, text, border="B")
    pdf.ln(7)
    for section in report.sections:
        points = f"{_number(section.points)} / {_number(section.max)}"
        for text, col in zip((section.title, _number(section.score), points), columns, strict=True):
            pdf.cell(col, 7, text)
        pdf.ln(7)
    pdf.ln(3)

    line(f"{t['findings']} ({len(report.findings)})", size=13, height=8)
    if not report.findings:
        line(t["no_findings"])
    for index, finding in enumerate(report.findings, start=1):
        line(f"{index}. [{word(finding.severity)}] {finding.item_text}", size=11, height=7)
        details = f"{t['section']}: {finding.section_title}    {t['status']}: {word(finding.status)}"
        if finding.rectification_status:
            due = _local(finding.rectification_due, report.timezone) if finding.rectification_due else "-"
            details += f"    {t['rectification']}: {word(finding.rectification_status)} ({t['due']} {due})"
        else:
            details += f"    {t['rectification']}: {t['none']}"
        line(details, size=9, height=5)
        if finding.note:
            line(f"{t['note']}: {finding.note}", size=9, height=5)
        _thumbnails(pdf, finding.thumbnails[:MAX_THUMBNAILS_PER_FINDING])
        pdf.ln(2)
    return bytes(pdf.output())


def _thumbnails(pdf: FPDF, images: list[bytes]) -> None:
    """A row of thumbnails, kept together on one page."""
    if not images:
        return
    height = THUMB_WIDTH_MM * 4 / 3  # room for a portrait photo
    if pdf.get_y() + height > pdf.h - pdf.b_margin:
        pdf.add_page()
    x, y = pdf.l_margin, pdf.get_y()
    tallest = 0.0
    for data in images:
        info = pdf.image(io.BytesIO(data), x=x, y=y, w=THUMB_WIDTH_MM)
        tallest = max(tallest, float(info.rendered_height))
        x += THUMB_WIDTH_MM + 3
    pdf.set_y(y + tallest + 1)
