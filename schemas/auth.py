"""Sessions, passwords and download tickets."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from schemas.common import StrictModel
from schemas.org import TokenResponse


class SessionTokens(TokenResponse):
    # True after an admin's password reset: every endpoint but POST /me/password, GET /me and logout
    # answers 403 password-change-required until the user chooses their own.
    password_change_required: bool = False


class LoggedOut(BaseModel):
    revoked: bool


class PasswordChange(StrictModel):
    current_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=1, max_length=200)


class PasswordChanged(BaseModel):
    other_sessions_ended: int


class TemporaryPassword(BaseModel):
    """Shown once: it is stored only as a hash."""

    temporary_password: str
    must_change: bool = True
    sessions_ended: int


class DownloadTicketRequest(StrictModel):
    path: str = Field(min_length=1, max_length=4000, description="A GET path (with its query) to download once")


class DownloadTicket(BaseModel):
    url: str
    expires_at: datetime
