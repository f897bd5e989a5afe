"""Event handlers subscribe by payload type and receive parsed payloads (no database: the reaction is
all the handler does)."""

from __future__ import annotations

from typing import Any, cast

import pytest
from pydantic import ValidationError

from schemas.audit_events import AppealDecided, AuditReleased
from server.context import UnitOfWork
from server.handlers import all_handlers
from server.handlers.base import on, reacting


async def test_a_handler_gets_the_payload_parsed_into_its_model() -> None:
    seen: list[Any] = []

    async def react(_uow: UnitOfWork, decided: AppealDecided, event: dict[str, Any]) -> None:
        seen.append((decided, event["_id"]))

    handler = reacting("probe", on(AppealDecided, react))
    assert handler.event_types == frozenset({"appeal.decided"})
    payload = {"appeal_id": "ap1", "finding_id": "f1", "audit_id": "a1", "branch_id": "b1", "outcome": "overturned"}
    fake_uow = cast(UnitOfWork, object())  # the reaction above never touches it
    await handler.handle(fake_uow, {"_id": "e1", "type": "appeal.decided", "payload": payload})
    await handler.handle(fake_uow, {"_id": "e2", "type": "audit.released", "payload": {}})  # not subscribed
    assert seen == [(AppealDecided.model_validate(payload), "e1")]
    with pytest.raises(ValidationError):  # a payload that does not fit its model fails loudly
        await handler.handle(fake_uow, {"_id": "e3", "type": "appeal.decided", "payload": {"appeal_id": "x"}})


def test_one_reaction_per_event_type() -> None:
    async def react(_uow: UnitOfWork, _payload: AuditReleased, _event: dict[str, Any]) -> None:
        return None

    with pytest.raises(RuntimeError):
        reacting("twice", on(AuditReleased, react), on(AuditReleased, react))


def test_the_wired_handlers_subscribe_to_registered_event_types_only() -> None:
    from schemas.events import EVENT_TYPES

    for handler in all_handlers():
        assert handler.event_types <= {*EVENT_TYPES, "*"}, handler.name
