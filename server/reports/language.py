"""Which language a report is written in: ?lang=, then Accept-Language, then the reader's own language."""

from __future__ import annotations

SUPPORTED = ("zh-CN", "en", "es")
DEFAULT_LANGUAGE = "en"


def _supported(tag: str) -> str | None:
    tag = tag.strip().lower()
    if not tag:
        return None
    primary = tag.split("-", 1)[0]
    if primary == "zh":
        return "zh-CN"
    return next((lang for lang in SUPPORTED if lang.lower() == primary), None)


def from_accept_language(header: str | None) -> str | None:
    """The best supported language in an Accept-Language header (highest q first), if any."""
    if not header:
        return None
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        language = _supported(tag)
        if language and weight > 0:
            choices.append((-weight, position, language))
    return min(choices)[2] if choices else None


def report_language(requested: str | None, accept_language: str | None, user_language: str | None) -> str:
    return requested or from_accept_language(accept_language) or _supported(user_language or "") or DEFAULT_LANGUAGE
