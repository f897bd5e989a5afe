"""Starting an audit without I/O: whether an assignment may be started by this caller, and the new audit
document (check-in flags, covert, channel, pinned checklist version)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from schemas.audits import AuditStart
from server.domain import audit_rules
from server.domain.access import MYSTERY_SHOPPER, Doc, Principal
from server.domain.submission import SEVERITIES
from server.errors import Conflict, Forbidden, ValidationFailed, field_error

# A phone's clock may run ahead a little; beyond this a start time is flagged.
FUTURE_TOLERANCE = timedelta(minutes=10)
DEFAULT_GEOFENCE_M = 150.0


def check_assignment(assignment: Doc, who: Principal, body: AuditStart) -> None:
    """Refuse starting `assignment` unless it is the caller's, still planned, and the body agrees with it."""
    if assignment.get("assignee_id") != who.user_id:
        raise Forbidden("Only the assignee may start this visit")
    if assignment.get("audit_id") or assignment.get("status") != "planned":
        raise Conflict("This assignment's audit was already started")
    if body.branch_id and body.branch_id != assignment["branch_id"]:
        raise ValidationFailed(
            "branch_id differs from the assignment's",
            errors=[field_error(["body", "branch_id"], "not the assignment's branch")],
        )
    if body.checklist_key != assignment["checklist_key"]:
        raise ValidationFailed(
            "checklist_key differs from the assignment's",
            errors=[field_error(["body", "checklist_key"], "not the assignment's checklist")],
        )


def _given(value: Any) -> Any:
    """A request without its absent (None) fields, at every depth."""
    if isinstance(value, dict):
        return {k: _given(v) for k, v in value.items() if v is not None}
    return value


def same_start(existing: Doc, who: Principal, request_doc: dict[str, Any]) -> bool:
    """Whether a start request replays the one that created `existing` (same caller, same body; an optional
    field left out is the same as one sent empty, so a replay from an older app version still matches)."""
    return existing.get("auditor_id") == who.user_id and _given(existing.get("start_request")) == _given(request_doc)


def new_audit(
    audit_id: str,
    *,
    who: Principal,
    body: AuditStart,
    request_doc: dict[str, Any],
    branch: Doc,
    assignment: Doc | None,
    checklist_channel: str,
    checklist_version: int,
    now: datetime,
) -> Doc:
    """The audit document a start creates; check-in problems are flagged, never refused."""
    channel = assignment["channel"] if assignment else checklist_channel
    covert = bool(assignment["covert"]) if assignment else who.role == MYSTERY_SHOPPER
    location = (body.location.lat, body.location.lon) if body.location else None
    window = (assignment["window_start"], assignment["window_end"]) if assignment else None
    flags, distance = audit_rules.checkin_flags(
        at=body.started_at,
        location=location,
        branch_location=(branch["location"]["lat"], branch["location"]["lon"]) if channel == "in_branch" else None,
        geofence_m=float(branch.get("geofence_m") or DEFAULT_GEOFENCE_M),
        window=window,
    )
    started_at = body.started_at.astimezone(now.tzinfo)
    if body.started_at > now + FUTURE_TOLERANCE:
        # A clock ahead would put every honest answer "before the start" (server.domain.answers): the audit
        # starts when the server heard of it, and the phone's time stays in checkin.reported_at.
        flags.append("started_in_future")
        started_at = now
    return {
        "_id": audit_id,
        "assignment_id": assignment["_id"] if assignment else None,
        "program_id": assignment["program_id"] if assignment else None,
        "branch_id": branch["_id"],
        "region_id": branch["region_id"],
        "branch_timezone": branch.get("timezone"),
        "branch_type": branch.get("branch_type"),
        "checklist_key": body.checklist_key,
        "checklist_version": checklist_version,
        "channel": channel,
        "covert": covert,
        "auditor_id": who.user_id,
        "auditor_role": who.role,
        "auditor_name": who.display_name,
        "status": "in_progress",
        "started_at": started_at,
        "checkin": {
            "at": started_at,
            "reported_at": body.started_at,
            "received_at": now,
            "location": request_doc.get("location"),
            "accuracy_m": body.location.accuracy_m if body.location else None,
            "distance_m": distance,
            "flags": flags,
        },
        "answers": {},
        "answers_rev": 0,
        "submissions": 0,
        "flags": list(flags),
        "finding_counts": dict.fromkeys(SEVERITIES, 0),
        "open_rectifications": 0,
        "start_request": request_doc,
        "created_at": now,
        "updated_at": now,
    }
