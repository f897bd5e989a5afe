"""Answer merging without a database: the later answered_at wins per item, replays change nothing,
times compare at the database's millisecond precision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from server.domain.answers import after_batch, newer_than_stored, newest_per_item, stored_answer, stored_time

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)


def answer(item_id: str, value: Any, at: datetime, **extra: Any) -> dict[str, Any]:
    return {"item_id": item_id, "value": value, "answered_at": at, **extra}


def test_stored_time_keeps_milliseconds() -> None:
    assert stored_time(T0.replace(microsecond=123456)) == T0.replace(microsecond=123000)


def test_newest_per_item_keeps_the_latest_and_the_first_on_a_tie() -> None:
    batch = [
        answer("a", 1, T0 + timedelta(seconds=5)),
        answer("a", 2, T0),
        answer("b", "first", T0),
        answer("b", "second", T0),
    ]
    chosen = newest_per_item(batch)
    assert chosen["a"]["value"] == 1 and chosen["b"]["value"] == "first"


def test_stored_answer_has_the_stored_shape() -> None:
    stored = stored_answer(answer("a", True, T0.replace(microsecond=999999), note="n"), NOW)
    assert stored == {
        "value": True,
        "na": False,
        "note": "n",
        "answered_at": T0.replace(microsecond=999000),
        "received_at": NOW,
        "fixed_on_spot": False,
    }


def test_newer_than_stored_leaves_out_equal_and_older_versions() -> None:
    stored = {"a": stored_answer(answer("a", 1, T0), NOW), "b": stored_answer(answer("b", 1, T0), NOW)}
    batch = {
        "a": answer("a", 2, T0.replace(microsecond=400)),  # same millisecond: a replay
        "b": answer("b", 2, T0 + timedelta(seconds=1)),
        "c": answer("c", 2, T0 - timedelta(days=1)),  # never answered: any time wins
    }
    assert sorted(newer_than_stored(stored, batch)) == ["b", "c"]
    assert sorted(newer_than_stored(None, batch)) == ["a", "b", "c"]


def test_after_batch_applies_later_versions_and_moves_the_revision() -> None:
    audit: dict[str, Any] = {
        "_id": "x",
        "status": "returned",
        "answers_rev": 3,
        "updated_at": T0,
        "answers": {"a": stored_answer(answer("a", "old", T0 + timedelta(seconds=10)), T0)},
    }
    batch = {
        "a": stored_answer(answer("a", "stale", T0), NOW),
        "b": stored_answer(answer("b", "new", T0), NOW),
    }
    after, applied = after_batch(audit, batch, NOW)
    assert applied == 1
    assert after["answers"]["a"]["value"] == "old" and after["answers"]["b"]["value"] == "new"
    assert after["status"] == "in_progress" and after["answers_rev"] == 4 and after["updated_at"] == NOW
    assert audit["answers"].keys() == {"a"}  # the input is left alone


def test_after_batch_of_a_replay_changes_nothing() -> None:
    stored = stored_answer(answer("a", 1, T0), T0)
    audit = {"_id": "x", "status": "returned", "answers_rev": 1, "updated_at": T0, "answers": {"a": stored}}
    after, applied = after_batch(audit, {"a": stored_answer(answer("a", 1, T0), NOW)}, NOW)
    assert applied == 0 and after == audit
