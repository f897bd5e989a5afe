"""Trend charts as PNG (matplotlib with the Agg backend; CPU work, run it in an executor)."""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: this module renders to bytes only

from matplotlib import font_manager
from matplotlib.figure import Figure

from server.reports.pdf import font_path

# pyplot keeps global state; Figure objects do not, but font registration does, so guard it.
_FONT_LOCK = threading.Lock()
_font_name: str | None = None

CHART_LABELS = {
    "en": {"score": "Average score", "audits": "Audits", "critical": "Critical failures"},
    "zh-CN": {"score": "平均得分", "audits": "审计数", "critical": "红线失败"},
    "es": {"score": "Puntuación media", "audits": "Auditorías", "critical": "Fallos críticos"},
}


@dataclass(frozen=True)
class TrendPointData:
    period: str
    average_score: float | None
    audits: int
    critical_failed: int


def _cjk_font() -> str:
    global _font_name
    with _FONT_LOCK:
        if _font_name is None:
            path: Path = font_path()
            font_manager.fontManager.addfont(str(path))
            _font_name = font_manager.FontProperties(fname=str(path)).get_name()
        return _font_name


def render_trend_png(title: str, points: Sequence[TrendPointData], language: str = "en") -> bytes:
    """Average score as a line over audit counts as bars, one point per period."""
    labels = CHART_LABELS.get(language, CHART_LABELS["en"])
    family = _cjk_font()
    figure = Figure(figsize=(8, 4), dpi=100)
    axes = figure.add_subplot(1, 1, 1)
    periods = [p.period for p in points]
    positions = list(range(len(points)))
    counts_axis = axes.twinx()
    counts_axis.bar(positions, [p.audits for p in points], color="#c9d7e8", label=labels["audits"])
    counts_axis.bar(positions, [p.critical_failed for p in points], color="#d9534f", label=labels["critical"])
    counts_axis.set_ylabel(labels["audits"], fontfamily=family)
    scored = [(x, p.average_score) for x, p in zip(positions, points, strict=True) if p.average_score is not None]
    axes.plot([x for x, _ in scored], [s for _, s in scored], marker="o", color="#1f4e79", label=labels["score"])
    axes.set_ylim(0, 100)
    axes.set_ylabel(labels["score"], fontfamily=family)
    axes.set_zorder(counts_axis.get_zorder() + 1)
    axes.patch.set_visible(False)
    axes.set_xticks(positions)
    axes.set_xticklabels(periods, rotation=45, ha="right", fontsize=8)
    axes.set_title(title, fontfamily=family)
    axes.grid(axis="y", alpha=0.3)
    handles = axes.get_legend_handles_labels()[0] + counts_axis.get_legend_handles_labels()[0]
    axes.legend(handles=handles, loc="lower left", prop={"family": family, "size": 8})
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
