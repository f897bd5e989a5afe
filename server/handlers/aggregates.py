"""Keeps the scorecard and trend aggregates in step with released and rescored audits."""

from __future__ import annotations

from server.context import UnitOfWork
from server.db import Doc
from server.handlers.base import EventHandler
from server.storage import reports

# audit.rescored carries {old_score, new_score, old_grade, new_grade}; the stored per-audit snapshot
# holds the same "old" side plus section scores and the critical flag, so the handler applies the
# old->new difference of everything the buckets count. appeal.decided is included because an overturned
# critical finding can change the audit's critical failure without a score change.
EVENT_TYPES = frozenset({"audit.released", "audit.rescored", "appeal.decided"})


async def update_aggregates(uow: UnitOfWork, event: Doc) -> None:
    """Re-count the event's audit in the report buckets (idempotent: a repeat finds nothing to change)."""
    payload = event.get("payload") or {}
    audit_id = payload.get("audit_id") or (event.get("subject_ids") or {}).get("audit_id")
    if not audit_id:
        return
    await reports.apply_audit(uow.db, str(audit_id), uow.session, uow.now)


HANDLERS = [EventHandler("aggregates", EVENT_TYPES, update_aggregates)]
