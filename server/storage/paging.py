"""Opaque, stable cursors for listings sorted by one or two keys."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from server.errors import ValidationFailed, field_error


def encode_cursor(values: list[Any]) -> str:
    plain = [{"$dt": v.isoformat()} if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list):
            raise ValueError("not a list")
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed("cursor is not one this server issued",
                               errors=[field_error(["query", "cursor"], "invalid cursor")]) from None
    return [datetime.fromisoformat(v["$dt"]) if isinstance(v, dict) and "$dt" in v else v for v in values]


def after_filter(sort: list[tuple[str, int]], cursor: str | None) -> dict[str, Any]:
    """The filter that resumes a listing after the cursor's row (keyset pagination)."""
    if not cursor:
        return {}
    values = decode_cursor(cursor)
    if len(values) != len(sort):
        raise ValidationFailed("cursor does not match this listing",
                               errors=[field_error(["query", "cursor"], "invalid cursor")])
    clauses: list[dict[str, Any]] = []
    for i, (key, direction) in enumerate(sort):
        op = "$gt" if direction == 1 else "$lt"
        clause = {sort[j][0]: values[j] for j in range(i)}
        clause[key] = {op: values[i]}
        clauses.append(clause)
    return {"$or": clauses} if len(clauses) > 1 else clauses[0]


def page_of(
    docs: list[dict[str, Any]], sort: list[tuple[str, int]], limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Trim the extra row fetched to know whether another page exists; return rows and the next cursor."""
    if len(docs) <= limit:
        return docs, None
    rows = docs[:limit]
    last = rows[-1]
    return rows, encode_cursor([_dig(last, key) for key, _ in sort])


def _dig(doc: dict[str, Any], dotted: str) -> Any:
    value: Any = doc
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def combine(*filters: dict[str, Any]) -> dict[str, Any]:
    parts = [f for f in filters if f]
    if not parts:
        return {}
    return parts[0] if len(parts) == 1 else {"$and": parts}
