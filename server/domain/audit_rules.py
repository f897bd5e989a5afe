"""Audit rules without I/O: state transitions, answer validation, item outcomes, show_if visibility,
applicability, progress and check-in flags."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from schemas.checklist import Checklist, Item
from server.domain.geo import haversine_m
from server.errors import InvalidTransition, field_error

Outcome = Literal["pass", "fail", "na", "unanswered", "unscored"]

# (status, action) -> next status. Anything absent is refused with 409.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("in_progress", "answer"): "in_progress",
    ("returned", "answer"): "in_progress",
    ("in_progress", "submit"): "submitted",
    ("returned", "submit"): "submitted",
    ("submitted", "release"): "released",
    ("submitted", "return"): "returned",
}
ANSWERABLE = ("in_progress", "returned")
SUBMITTED = ("submitted", "released")

# Assignment status follows its audit.
ASSIGNMENT_STATUS_FOR = {
    "in_progress": "in_progress",
    "returned": "in_progress",
    "submitted": "submitted",
    "released": "released",
}

MAX_TEXT = 4000


def next_status(status: str, action: str) -> str:
    """The status after `action`, or InvalidTransition (409)."""
    target = TRANSITIONS.get((status, action))
    if target is None:
        raise InvalidTransition(
            f"Cannot {action} an audit that is {status}", extra={"current_status": status, "action": action}
        )
    return target


# --- answers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One stored answer as the rules see it."""

    value: Any = None
    na: bool = False

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Answer:
        return cls(value=doc.get("value"), na=bool(doc.get("na", False)))


def answers_of(stored: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Answer]:
    return {item_id: Answer.of(doc) for item_id, doc in (stored or {}).items()}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def value_problem(item: Item, value: Any) -> str | None:
    """Why `value` is not a valid answer to `item`, or None when it is."""
    kind = item.type
    if kind == "yes_no":
        return None if isinstance(value, bool) else "yes_no needs true or false"
    if kind == "rating":
        assert item.scale is not None  # set by the Item validator
        if not isinstance(value, int) or isinstance(value, bool):
            return "rating needs an integer"
        if not item.scale.min <= value <= item.scale.max:
            return f"rating must be between {item.scale.min} and {item.scale.max}"
        return None
    if kind in ("number", "timer"):
        if not _is_number(value):
            return f"{kind} needs a number"
        if kind == "timer" and value < 0:
            return "timer cannot be negative"
        return None
    option_ids = {o.id for o in item.options or []}
    if kind == "single_choice":
        return None if isinstance(value, str) and value in option_ids else "unknown option id"
    if kind == "multi_choice":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return "multi_choice needs a list of option ids"
        if len(set(value)) != len(value):
            return "option ids repeat"
        unknown = [v for v in value if v not in option_ids]
        return f"unknown option ids {unknown}" if unknown else None
    if kind == "text":
        if not isinstance(value, str):
            return "text needs a string"
        return f"text longer than {MAX_TEXT} characters" if len(value) > MAX_TEXT else None
    # photo: the photos are the answer
    return None if value is None else "photo items take null (upload the photos instead)"


def validate_answers(
    checklist: Checklist, answers: Sequence[Mapping[str, Any]], *, may_fix_on_spot: bool
) -> list[dict[str, Any]]:
    """Problems of a batch, each located at ["body", index, field]."""
    errors: list[dict[str, Any]] = []
    items = {item.id: item for item in checklist.items()}
    for index, answer in enumerate(answers):
        item = items.get(str(answer.get("item_id")))
        if item is None:
            errors.append(field_error(["body", index, "item_id"], f"unknown item {answer.get('item_id')!r}"))
            continue
        if answer.get("fixed_on_spot") and not may_fix_on_spot:
            errors.append(field_error(["body", index, "fixed_on_spot"], "only an inspector fixes on the spot"))
        if answer.get("na"):
            if not item.na_allowed:
                errors.append(field_error(["body", index, "na"], f"item {item.id} does not allow N/A"))
            continue
        if answer.get("value") is None and item.type != "photo":
            errors.append(field_error(["body", index, "value"], "a value is required unless na is true"))
            continue
        problem = value_problem(item, answer.get("value"))
        if problem:
            errors.append(field_error(["body", index, "value"], problem))
    return errors


def outcome(item: Item, answer: Answer | None) -> Outcome:
    """Whether an answered item meets its standard (before visibility and appeals)."""
    if not item.scored:
        return "unscored"
    if answer is None:
        return "unanswered"
    if answer.na:
        return "na"
    value = answer.value
    if value is None:
        return "unanswered"
    if item.type == "yes_no":
        return "pass" if value is True else "fail"
    if item.type == "rating":
        assert item.scale is not None
        return "pass" if value >= item.scale.pass_at else "fail"
    if item.type in ("number", "timer"):
        rule = item.rule()
        assert rule is not None
        return "pass" if rule.passes(float(value)) else "fail"
    passing = {o.id: o.passing for o in item.options or []}
    chosen = [value] if item.type == "single_choice" else list(value)
    return "pass" if all(passing.get(v, False) for v in chosen) else "fail"


# --- visibility -----------------------------------------------------------------------------------


def applies(item: Item, *, branch_type: str | None, channel: str | None) -> bool:
    """Whether an item applies to this branch type and channel at all."""
    rule = item.applies_to
    if rule is None:
        return True
    if rule.branch_types is not None and branch_type is not None and branch_type not in rule.branch_types:
        return False
    return not (rule.channels is not None and channel is not None and channel not in rule.channels)


def visible_items(
    checklist: Checklist,
    answers: Mapping[str, Answer],
    *,
    branch_type: str | None = None,
    channel: str | None = None,
) -> set[str]:
    """Ids of the items that apply and whose show_if holds (hidden items are neither required nor scored)."""
    items = {item.id: item for item in checklist.items()}
    memo: dict[str, bool] = {}

    def shown(item_id: str, trail: frozenset[str]) -> bool:
        if item_id in memo:
            return memo[item_id]
        item = items.get(item_id)
        if item is None or item_id in trail:
            return False  # unknown reference or a cycle: hide rather than guess
        result = applies(item, branch_type=branch_type, channel=channel)
        condition = item.show_if
        if result and condition is not None:
            result = shown(condition.item, trail | {item_id}) and _condition_holds(
                condition_item=items.get(condition.item),
                answer=answers.get(condition.item),
                equals=condition.equals,
                in_=condition.in_,
                failed=condition.failed,
            )
        memo[item_id] = result
        return result

    return {item_id for item_id in items if shown(item_id, frozenset())}


def _condition_holds(
    *,
    condition_item: Item | None,
    answer: Answer | None,
    equals: Any,
    in_: list[Any] | None,
    failed: bool | None,
) -> bool:
    if condition_item is None or answer is None or answer.na:
        return False
    if failed is not None:
        result = outcome(condition_item, answer)
        return result == ("fail" if failed else "pass")
    if in_ is not None:
        if isinstance(answer.value, list):
            return any(v in in_ for v in answer.value)
        return answer.value in in_
    if equals is not None:
        if isinstance(answer.value, list):
            return equals in answer.value
        return bool(answer.value == equals)
    return answer.value is not None


# --- progress -------------------------------------------------------------------------------------


@dataclass
class Progress:
    answered: int = 0
    required: int = 0
    missing_items: list[str] = field(default_factory=list)
    missing_photos: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing_items and not self.missing_photos

    def as_dict(self) -> dict[str, Any]:
        return {
            "answered": self.answered,
            "required": self.required,
            "missing_items": self.missing_items,
            "missing_photos": self.missing_photos,
            "complete": self.complete,
        }


def photos_needed(item: Item, answer: Answer | None) -> int:
    """How many photos an item needs given its answer (0 when none are required)."""
    if answer is not None and answer.na:
        return 0
    policy = item.photo.policy
    if item.type == "photo":
        return max(1, item.photo.min)
    if policy == "required":
        return max(1, item.photo.min)
    if policy == "required_on_fail" and answer is not None and outcome(item, answer) == "fail":
        return max(1, item.photo.min)
    return 0


def progress(
    checklist: Checklist,
    answers: Mapping[str, Answer],
    photo_counts: Mapping[str, int],
    *,
    branch_type: str | None = None,
    channel: str | None = None,
) -> Progress:
    """What is answered and what is still missing, in checklist order."""
    visible = visible_items(checklist, answers, branch_type=branch_type, channel=channel)
    result = Progress()
    for item in checklist.items():
        if item.id not in visible:
            continue
        answer = answers.get(item.id)
        needed = photos_needed(item, answer)
        has_photos = photo_counts.get(item.id, 0) >= needed
        if item.type == "photo":
            if item.required:
                result.required += 1
                if has_photos:
                    result.answered += 1
                else:
                    result.missing_photos.append(item.id)
            continue
        if item.required:
            result.required += 1
            if answer is not None and (answer.na or answer.value is not None):
                result.answered += 1
            else:
                result.missing_items.append(item.id)
        if needed and not has_photos:
            result.missing_photos.append(item.id)
    return result


# --- check-in -------------------------------------------------------------------------------------


def checkin_flags(
    *,
    at: datetime,
    location: tuple[float, float] | None,
    branch_location: tuple[float, float] | None,
    geofence_m: float,
    window: tuple[datetime, datetime] | None,
) -> tuple[list[str], float | None]:
    """Flags for a check-in (accepted either way) and the distance from the branch in metres.
    `branch_location` None: a phone or online visit, where no geofence applies."""
    flags: list[str] = []
    distance: float | None = None
    if branch_location is None:
        pass
    elif location is None:
        flags.append("no_location")
    else:
        distance = round(haversine_m(location[0], location[1], branch_location[0], branch_location[1]), 1)
        if distance > geofence_m:
            flags.append("outside_geofence")
    if window is not None and not window[0] <= at <= window[1]:
        flags.append("outside_window")
    return flags, distance
