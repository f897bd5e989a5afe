"""Organisation and identity: regions, branches, users, login."""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from schemas.common import PageQuery, StrictModel

Role = Literal["admin", "compliance", "regional_manager", "branch_head", "inspector", "mystery_shopper", "integration"]
Language = Literal["zh-CN", "en", "es"]
BranchType = Literal["full_service", "community", "self_service", "private_banking"]


class LoginRequest(StrictModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=200)


class RefreshRequest(StrictModel):
    refresh_token: str = Field(min_length=10, max_length=200)


class UserPublic(BaseModel):
    id: str
    username: str
    display_name: str
    role: Role
    region_id: str | None = None
    branch_id: str | None = None
    home_branch_id: str | None = None
    language: Language = "en"
    email: str | None = None
    active: bool = True
    created_at: datetime


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int
    user: UserPublic


class UserCreate(StrictModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=10, max_length=200)
    role: Role
    display_name: str = Field(min_length=1, max_length=120)
    region_id: str | None = Field(default=None, max_length=64)
    branch_id: str | None = Field(default=None, max_length=64)
    home_branch_id: str | None = Field(default=None, max_length=64)
    language: Language = "en"
    email: str | None = Field(default=None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")

    @model_validator(mode="after")
    def scope_matches_role(self) -> UserCreate:
        if self.role == "branch_head" and not self.branch_id:
            raise ValueError("branch_head needs branch_id")
        if self.role == "regional_manager" and not self.region_id:
            raise ValueError("regional_manager needs region_id")
        return self


class UserQuery(PageQuery):
    role: Role | None = None
    branch_id: str | None = Field(default=None, max_length=64)
    region_id: str | None = Field(default=None, max_length=64)
    active: bool | None = None
    q: str | None = Field(default=None, min_length=1, max_length=64,
                          description="Search: usernames, display names and e-mails containing this (any case)")


class RegionCreate(StrictModel):
    code: str = Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1, max_length=120)
    manager_user_id: str | None = Field(default=None, max_length=64)


class RegionPublic(BaseModel):
    id: str
    code: str
    name: str
    manager_user_id: str | None = None
    created_at: datetime


class Location(BaseModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class OpeningHours(BaseModel):
    """Local opening hours; weekdays 0=Monday."""

    open: str = Field(default="09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    close: str = Field(default="17:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    weekdays: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])


class BranchCreate(StrictModel):
    code: str = Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1, max_length=200)
    region_id: str = Field(min_length=1, max_length=64)
    address: str = Field(default="", max_length=400)
    location: Location
    geofence_m: int = Field(default=150, ge=10, le=10_000)
    timezone: str = Field(max_length=64)
    branch_type: BranchType = "full_service"
    opening_hours: OpeningHours = Field(default_factory=OpeningHours)

    @field_validator("timezone")
    @classmethod
    def known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value


class BranchPublic(BaseModel):
    id: str
    code: str
    name: str
    region_id: str
    address: str = ""
    location: Location
    geofence_m: int
    timezone: str
    branch_type: BranchType
    opening_hours: OpeningHours
    head_user_id: str | None = None
    created_at: datetime
    closed_at: datetime | None = Field(default=None, description="Set once closed: no new visits are planned")
    closed_reason: str | None = None


class BranchQuery(PageQuery):
    region_id: str | None = Field(default=None, max_length=64)
