"""Keeps the scorecard and trend aggregates in step with released and rescored audits."""

from __future__ import annotations

from schemas.audit_events import AppealDecided, AuditReleased, AuditRescored
from server.context import UnitOfWork
from server.db import Doc
from server.handlers.base import on, reacting
from server.storage import reports


# audit.rescored carries {old_score, new_score, old_grade, new_grade}; the stored per-audit snapshot
# holds the same "old" side plus section scores and the critical flag, so the handler applies the
# old->new difference of everything the buckets count. appeal.decided is included because an overturned
# critical finding can change the audit's critical failure without a score change.
async def recount_audit(uow: UnitOfWork, payload: AuditReleased | AuditRescored | AppealDecided, _event: Doc) -> None:
    """Re-count the event's audit in the report buckets (idempotent: a repeat finds nothing to change)."""
    await reports.apply_audit(uow.db, payload.audit_id, uow.session, uow.now)


HANDLERS = [
    reacting(
        "aggregates",
        on(AuditReleased, recount_audit),
        on(AuditRescored, recount_audit),
        on(AppealDecided, recount_audit),
    )
]
