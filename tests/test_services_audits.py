"""The audit and appeal commands called directly, as handlers, jobs, the CLI and the demo call them:
each change commits with its events and trail entry, and the commands authorize by themselves."""

from __future__ import annotations

import pytest

from server.clock import FakeClock
from server.context import Services
from server.errors import Forbidden, InvalidTransition, NotFound
from server.services import Origin, appeals, audits
from tests.audit_factories import principal_of, released_audit, started_audit, submitted_audit


async def test_a_submission_is_scored_and_writes_its_findings_events_and_trail_at_once(
    services: Services, demo: object
) -> None:
    audit = await submitted_audit(services, hall_clean=False)
    assert audit["status"] == "submitted" and audit["finding_counts"]["major"] == 1
    events = [e["type"] for e in await services.db.events.find({"subject_ids.audit_id": audit["_id"]}).to_list()]
    assert events.count("audit.submitted") == 1 and events.count("finding.created") == 1
    assert await services.db.trail.count_documents({"action": "audit.submit", "entity_id": audit["_id"]}) == 1


async def test_review_commands_check_the_caller_and_the_state(services: Services, demo: object) -> None:
    audit = await submitted_audit(services)
    inspector = await principal_of(services, "inspector")
    compliance = await principal_of(services, "compliance")
    with pytest.raises(Forbidden):
        await audits.release_audit(services, inspector, audit["_id"])
    origin = Origin(request_id="req-1", client_address="10.0.0.1")
    returned = await audits.return_audit(
        services, compliance, audits.ReturnAudit(audit["_id"], "photo of the lobby is blurred"), origin=origin
    )
    assert returned["status"] == "returned" and "score" not in returned
    entry = await services.db.trail.find_one({"action": "audit.return"})
    assert entry is not None and entry["request_id"] == "req-1" and entry["client_address"] == "10.0.0.1"
    with pytest.raises(InvalidTransition):
        await audits.release_audit(services, compliance, audit["_id"])


async def test_an_appeal_is_filed_once_and_overturning_rescores(
    services: Services, demo: object, clock: FakeClock
) -> None:
    audit = await released_audit(services, hall_clean=False)
    finding = await services.db.findings.find_one({"audit_id": audit["_id"]})
    assert finding is not None
    head = await principal_of(services, "ljz.head")
    filed = await appeals.file_appeal(
        services, head, appeals.FileAppeal(finding["_id"], "it was being cleaned", idempotency_key="k1")
    )
    again = await appeals.file_appeal(
        services, head, appeals.FileAppeal(finding["_id"], "it was being cleaned", idempotency_key="k1")
    )
    assert filed.created and not again.created and again.appeal["_id"] == filed.appeal["_id"]
    compliance = await principal_of(services, "compliance")
    decided = await appeals.decide_appeal(
        services, compliance, appeals.DecideAppeal(filed.appeal["_id"], "overturned", "agreed")
    )
    assert decided["status"] == "overturned"
    rescored = await services.db.audits.find_one({"_id": audit["_id"]})
    assert rescored is not None and rescored["score"] > audit["score"]
    assert await services.db.events.count_documents({"type": "audit.rescored"}) == 1


async def test_an_appeal_from_another_branch_or_after_the_window_is_refused(
    services: Services, demo: object, clock: FakeClock
) -> None:
    from datetime import timedelta

    from server.errors import Conflict

    audit = await released_audit(services, hall_clean=False)
    finding = await services.db.findings.find_one({"audit_id": audit["_id"]})
    assert finding is not None
    with pytest.raises(NotFound):
        await appeals.file_appeal(services, await principal_of(services, "ja.head"),
                                  appeals.FileAppeal(finding["_id"], "not ours"))
    clock.advance(timedelta(days=services.settings.appeal_window_days, minutes=1))
    with pytest.raises(Conflict):
        await appeals.file_appeal(services, await principal_of(services, "ljz.head"),
                                  appeals.FileAppeal(finding["_id"], "too late"))


async def test_a_start_is_replayed_by_the_same_start_only(services: Services, demo: object) -> None:
    from schemas.audits import AuditStart
    from server.errors import Conflict

    audit = await started_audit(services)
    inspector = await principal_of(services, "inspector")
    same = AuditStart.model_validate(audit["start_request"])
    replay = await audits.start_audit(services, inspector, audits.StartAudit(audit["_id"], same))
    assert not replay.created and replay.audit["_id"] == audit["_id"]
    other = same.model_copy(update={"started_at": same.started_at.replace(year=2025)})
    with pytest.raises(Conflict):
        await audits.start_audit(services, inspector, audits.StartAudit(audit["_id"], other))
    assert await services.db.events.count_documents({"type": "audit.started"}) == 1
