"""Commands on the event backbone that people run: an admin puts a parked event back in line for the
handler that failed on it."""

from __future__ import annotations

from server.context import Services, UnitOfWork
from server.db import Doc
from server.domain import access
from server.domain.access import Principal
from server.errors import NotFound
from server.services import NO_ORIGIN, Origin, actor_of
from server.storage import outbox


async def retry_parked_event(services: Services, caller: Principal, failure_id: str, *,
                             origin: Origin = NO_ORIGIN) -> Doc:
    """A parked failure goes back in line with a fresh attempt budget; 404 when there is none."""
    access.require_role(caller, {access.ADMIN})

    async def work(uow: UnitOfWork) -> Doc | None:
        doc = await outbox.retry_parked(uow.db, failure_id, uow.now, uow.actor.user_id, uow.session)
        if doc is not None:
            uow.record("event_failure.retry", "handler_failure", failure_id,
                       {"handler": doc["handler"], "event_id": doc["event_id"]})
        return doc

    doc = await services.transact(actor_of(caller, origin), work)
    if doc is None:
        raise NotFound("No parked failure with this id")
    services.outbox_signal.set()
    return doc
