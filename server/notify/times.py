"""Times in notification texts, said the way people read them in their language, in the branch's zone.

"Sat 5 Dec, 18:00 China Time", "12月5日（周六）18:00 中国时间", "sáb 5 dic, 18:00 hora de China": the words
match what the web app shows (Intl's generic zone names), from small tables because the server has no CLDR
library. A zone without words here is named by its offset at that moment ("UTC+8"), never by its IANA id.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = {  # Monday first, as datetime.weekday() counts
    "zh-CN": ("周一", "周二", "周三", "周四", "周五", "周六", "周日"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "es": ("lun", "mar", "mié", "jue", "vie", "sáb", "dom"),
}
MONTHS = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "es": ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic"),
}

# IANA zone -> (zh-CN, en, es). Aliases of one zone share its words.
_CHINA = ("中国时间", "China Time", "hora de China")
ZONE_WORDS: dict[str, tuple[str, str, str]] = {
    "Asia/Shanghai": _CHINA,
    "Asia/Chongqing": _CHINA,
    "Asia/Harbin": _CHINA,
    "PRC": _CHINA,
    "Asia/Hong_Kong": ("香港时间", "Hong Kong Time", "hora de Hong Kong"),
    "Asia/Macau": ("澳门时间", "Macao Time", "hora de Macao"),
    "Asia/Taipei": ("台北时间", "Taipei Time", "hora de Taipéi"),
    "Asia/Singapore": ("新加坡时间", "Singapore Time", "hora de Singapur"),
    "Asia/Tokyo": ("日本时间", "Japan Time", "hora de Japón"),
    "Europe/Madrid": ("西班牙时间", "Spain Time", "hora de España"),
    "Europe/Paris": ("法国时间", "France Time", "hora de Francia"),
    "Europe/London": ("英国时间", "UK Time", "hora del Reino Unido"),
    "America/New_York": ("美国东部时间", "Eastern Time", "hora del Este"),
    "America/Los_Angeles": ("美国太平洋时间", "Pacific Time", "hora del Pacífico"),
    "America/Mexico_City": ("墨西哥城时间", "Mexico City Time", "hora de Ciudad de México"),
}
_COLUMN = {"zh-CN": 0, "en": 1, "es": 2}


def zone_words(timezone: str, language: str, moment: datetime) -> str:
    """The zone as people say it; otherwise its UTC offset at `moment` (DST included)."""
    words = ZONE_WORDS.get(timezone)
    if words is not None:
        return words[_COLUMN.get(language, 1)]
    offset = moment.astimezone(ZoneInfo(timezone)).utcoffset() or timedelta(0)
    return "UTC" + _offset_text(offset)


def _offset_text(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    if minutes == 0:
        return ""
    sign = "+" if minutes > 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours}" + (f":{rest:02d}" if rest else "")


def local_time_text(moment: datetime, timezone: str, language: str) -> str:
    """The weekday, day, month and wall time at the branch, with the zone's name, in `language`."""
    local = moment.astimezone(ZoneInfo(timezone))
    zone = zone_words(timezone, language, moment)
    weekday = WEEKDAYS.get(language, WEEKDAYS["en"])[local.weekday()]
    clock = f"{local:%H:%M}"
    if language == "zh-CN":
        return f"{local.month}月{local.day}日（{weekday}）{clock} {zone}"
    months = MONTHS["es" if language == "es" else "en"]
    return f"{weekday} {local.day} {months[local.month - 1]}, {clock} {zone}"
