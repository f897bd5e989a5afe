"""Rectification work follows the audit: a released audit opens one rectification per finding, and a
finding overturned on appeal cancels its rectification (server.services.rectifications decides both)."""

from __future__ import annotations

from schemas.audit_events import AppealDecided, AuditReleased
from server.context import UnitOfWork
from server.db import Doc
from server.handlers.base import on, reacting
from server.services import rectifications as commands


async def audit_released(uow: UnitOfWork, released: AuditReleased, _event: Doc) -> None:
    await commands.open_rectifications_in(uow, released)


async def appeal_decided(uow: UnitOfWork, decided: AppealDecided, _event: Doc) -> None:
    await commands.cancel_overturned_in(uow, decided)


HANDLERS = [reacting("rectifications", on(AuditReleased, audit_released), on(AppealDecided, appeal_decided))]
