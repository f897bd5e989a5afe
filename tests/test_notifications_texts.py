"""Notification texts say times the way people read them, in their language and the branch's zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.notify.messages import TEMPLATES, format_local, rectification_params, render
from server.notify.times import local_time_text, zone_words

SATURDAY_18_SHANGHAI = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Sat 5 Dec, 18:00 China Time"),
        ("zh-CN", "12月5日（周六）18:00 中国时间"),
        ("es", "sáb 5 dic, 18:00 hora de China"),
    ],
)
def test_a_time_reads_in_the_recipients_language(language: str, expected: str) -> None:
    assert local_time_text(SATURDAY_18_SHANGHAI, "Asia/Shanghai", language) == expected


def test_the_wall_time_is_the_branchs_across_daylight_saving() -> None:
    # Madrid is UTC+2 in summer and UTC+1 in winter: 16:00 UTC is 18:00 then 17:00 on the branch's clock.
    assert local_time_text(datetime(2026, 7, 3, 16, 0, tzinfo=UTC), "Europe/Madrid", "en") == (
        "Fri 3 Jul, 18:00 Spain Time"
    )
    assert local_time_text(datetime(2026, 12, 4, 16, 0, tzinfo=UTC), "Europe/Madrid", "es") == (
        "vie 4 dic, 17:00 hora de España"
    )


def test_a_zone_without_words_is_named_by_its_offset_never_its_id() -> None:
    moment = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    assert zone_words("Asia/Kolkata", "en", moment) == "UTC+5:30"
    assert zone_words("America/Sao_Paulo", "zh-CN", moment) == "UTC-3"
    assert zone_words("UTC", "es", moment) == "UTC"
    assert local_time_text(moment, "Asia/Kolkata", "zh-CN") == "12月5日（周六）15:30 UTC+5:30"


def test_an_unknown_language_reads_english() -> None:
    assert format_local(SATURDAY_18_SHANGHAI, "Asia/Shanghai", "fr") == "Sat 5 Dec, 18:00 China Time"


@pytest.mark.parametrize("language", ["en", "zh-CN", "es"])
def test_no_rectification_text_shows_an_iso_time_or_a_zone_id(language: str) -> None:
    rect = {
        "_id": "r1",
        "item_text": {"en": "Queue sign", "zh-CN": "排队标识", "es": "Señal de cola"},
        "branch_name": "Xuhui",
        "severity": "major",
        "due_at": SATURDAY_18_SHANGHAI,
        "timezone": "Asia/Shanghai",
    }
    requested = format_local(SATURDAY_18_SHANGHAI, "Asia/Shanghai", language)
    params = rectification_params(rect, language, days=2, comment="", reason="", requested=requested)
    for kind in TEMPLATES:
        message = render(kind, language, params)
        for text in (message.title, message.text):
            assert "2026-12-05" not in text and "Asia/Shanghai" not in text, (kind, text)
    due = render("reminder.before", language, params).text
    assert format_local(SATURDAY_18_SHANGHAI, "Asia/Shanghai", language) in due
    assert "18:00" in due
