"""Download tickets: a browser download (an export, an audit's PDF, a photo) cannot carry a bearer header,
and an access token must never sit in a URL (logs, history, Referer). A ticket is good for one GET of one
path and query, for a few seconds, as the user who asked for it; the route authorizes as usual."""

from __future__ import annotations

from datetime import timedelta

from yarl import URL

from schemas.auth import DownloadTicket
from server.context import Services
from server.errors import ValidationFailed, field_error
from server.http.authn import TICKET_PARAM, ticket_target, ticketable
from server.security import new_ticket, token_digest
from server.storage import auth as auth_store


def _download_path(path: str) -> URL:
    try:
        url = URL(path)
    except ValueError:
        url = None
    if url is None or url.is_absolute() or url.fragment or not url.path.startswith("/") or not ticketable(url.path):
        raise ValidationFailed("Only export, audit report and photo downloads take a ticket", errors=[
            field_error(["body", "path"], "must be a path under /api/v1/exports/, /api/v1/photos/ or "
                                          "/api/v1/audits/{id}/report.pdf"),
        ])
    if TICKET_PARAM in url.query:
        raise ValidationFailed("The path already carries a ticket",
                               errors=[field_error(["body", "path"], "must not contain a ticket parameter")])
    return url


async def issue_download_ticket(services: Services, user_id: str, session_id: str, path: str) -> DownloadTicket:
    url = _download_path(path)
    ticket = new_ticket()
    now = services.clock.now()
    expires_at = now + timedelta(seconds=services.settings.download_ticket_ttl_s)
    await auth_store.insert_ticket(services.db, token_digest(ticket), user_id, session_id, ticket_target(url), now,
                                   expires_at)
    return DownloadTicket(url=str(url.update_query({TICKET_PARAM: ticket})), expires_at=expires_at)
