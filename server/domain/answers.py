"""Offline-safe answering without I/O: per item the later answered_at wins, whatever the arrival order,
so a replayed batch changes nothing. server.storage.audits.apply_answers applies the same rule atomically
in the database; `after_batch` replays it on the document the database saw, for the response."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

# The status a change of answers leaves the audit in (a returned audit is being worked on again).
ANSWERING_STATUS = "in_progress"

# Phones' clocks are wrong, and a hostile one may lie. Because the later answered_at wins, a time from the
# future would freeze an answer (nothing could ever replace it) and a time from before the audit began
# would rewrite its history. So, within this tolerance for an honest drift, a phone's time is trusted; an
# answer from further in the future counts as given when the server received it, and one from before the
# audit started counts as given when it started (any real answer then beats it). Either is flagged on the
# audit for the reviewer, and the reported time is kept on the answer.
CLOCK_TOLERANCE = timedelta(minutes=2)
CLOCK_AHEAD = "answer_clock_ahead"
CLOCK_BEHIND = "answer_clock_behind"


def trusted_answered_at(
    reported: datetime, *, received_at: datetime, started_at: datetime | None
) -> tuple[datetime, str | None]:
    """The answered_at the server keeps for a phone's `reported` time, and the flag a clamp raises."""
    if reported > received_at + CLOCK_TOLERANCE:
        return received_at, CLOCK_AHEAD
    if started_at is not None and reported < started_at - CLOCK_TOLERANCE:
        return started_at, CLOCK_BEHIND
    return reported, None


def with_trusted_times(
    answers: Sequence[Mapping[str, Any]], *, received_at: datetime, started_at: datetime | None
) -> tuple[list[dict[str, Any]], set[str]]:
    """The answers with their answered_at made trustworthy (see CLOCK_TOLERANCE), and the flags raised."""
    trusted: list[dict[str, Any]] = []
    flags: set[str] = set()
    for answer in answers:
        moment, flag = trusted_answered_at(answer["answered_at"], received_at=received_at, started_at=started_at)
        kept = dict(answer)
        if flag is not None:
            flags.add(flag)
            kept["reported_answered_at"] = answer["answered_at"]
            kept["answered_at"] = moment
        trusted.append(kept)
    return trusted, flags


def stored_time(moment: datetime) -> datetime:
    """`moment` at the database's precision (BSON dates keep milliseconds), so that comparisons made
    here agree with the ones the database makes."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def newest_per_item(answers: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Within one batch, the latest answered_at per item wins (the first on a tie)."""
    chosen: dict[str, dict[str, Any]] = {}
    for answer in answers:
        current = chosen.get(answer["item_id"])
        if current is None or answer["answered_at"] > current["answered_at"]:
            chosen[answer["item_id"]] = dict(answer)
    return chosen


def stored_answer(answer: Mapping[str, Any], received_at: datetime) -> dict[str, Any]:
    """An answer as the audit document keeps it."""
    return {
        "value": answer.get("value"),
        "na": bool(answer.get("na")),
        "note": answer.get("note"),
        "answered_at": stored_time(answer["answered_at"]),
        "received_at": received_at,
        "fixed_on_spot": bool(answer.get("fixed_on_spot")),
    } | ({"reported_answered_at": answer["reported_answered_at"]} if answer.get("reported_answered_at") else {})


def replaces(stored: Mapping[str, Any] | None, answered_at: datetime) -> bool:
    """Whether an answer given at `answered_at` replaces the stored one (missing, or answered earlier)."""
    return stored is None or stored["answered_at"] < stored_time(answered_at)


def newer_than_stored(
    stored: Mapping[str, Mapping[str, Any]] | None, batch: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The answers of a batch that would replace what `stored` holds. A stored answered_at only ever
    grows, so an answer left out here cannot win against any later state of the audit either."""
    current = stored or {}
    return {
        item_id: dict(answer)
        for item_id, answer in batch.items()
        if replaces(current.get(item_id), answer["answered_at"])
    }


def after_batch(
    audit: Mapping[str, Any], batch: Mapping[str, Mapping[str, Any]], now: datetime
) -> tuple[dict[str, Any], int]:
    """The audit as storing `batch` (answers in stored form) leaves it, and how many answers changed.
    The answer revision moves by the number changed, so a submission scored before them is refused."""
    answers = dict(audit.get("answers") or {})
    applied = 0
    for item_id, answer in batch.items():
        if replaces(answers.get(item_id), answer["answered_at"]):
            answers[item_id] = dict(answer)
            applied += 1
    after = {**audit, "answers": answers}
    if applied:
        after["status"] = ANSWERING_STATUS
        after["updated_at"] = now
        after["answers_rev"] = int(audit.get("answers_rev") or 0) + applied
    return after, applied
