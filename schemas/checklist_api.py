"""Request and response shapes of the checklists API. A served checklist carries one language only,
so the phone downloads a third of the definition."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel

from schemas.checklist import (
    AppliesTo,
    Channel,
    DuePolicy,
    GradeBand,
    ItemType,
    Language,
    PhotoPolicy,
    Scale,
    Severity,
)


class ChecklistLanguageQuery(BaseModel):
    """`?lang=` wins over Accept-Language; an unsupported value falls back like a missing one."""

    model_config = ConfigDict(extra="forbid")
    lang: str | None = Field(default=None, max_length=35,
                             description="zh-CN, en or es (zh, es-MX, ... accepted)")


class ServedOption(BaseModel):
    id: str
    text: str
    passing: bool


class ServedShowIf(BaseModel):
    """Show the item only when `item`'s answer equals `equals`, is one of `in`, or (failed: true) failed."""

    model_config = ConfigDict(populate_by_name=True)
    item: str
    equals: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")
    failed: bool | None = None


class ServedItem(BaseModel):
    id: str
    type: ItemType
    text: str
    guidance: str | None = None
    weight: float
    severity: Severity
    critical: bool
    na_allowed: bool
    required: bool
    scored: bool = Field(description="false for text and photo items, which carry no points")
    photo: PhotoPolicy
    show_if: ServedShowIf | None = None
    options: list[ServedOption] | None = None
    scale: Scale | None = None
    pass_rule: str | None = Field(default=None, description="e.g. '<= 10' in the item's unit")
    unit: str | None = None
    applies_to: AppliesTo | None = None


class ServedSection(BaseModel):
    id: str
    title: str
    weight: float
    items: list[ServedItem]


class ServedChecklist(BaseModel):
    """One version of a checklist in one language (absent optional fields are omitted)."""

    key: str
    version: int
    content_hash: str
    language: Language
    default_language: Language
    languages: list[Language]
    channel: Channel
    title: str
    description: str | None = None
    sections: list[ServedSection]
    grade_bands: list[GradeBand]
    due_policy: DuePolicy | None = None


class ChecklistSummary(BaseModel):
    key: str
    version: int = Field(description="The current version")
    title: str = Field(description="In the negotiated language")
    language: Language
    languages: list[Language]
    default_language: Language
    channel: Channel
    updated_at: datetime
    retired: bool = Field(default=False, description="A retired checklist starts no new audits or programs")


class ChecklistList(RootModel[list[ChecklistSummary]]):
    pass


class ChecklistVersionSummary(BaseModel):
    key: str
    version: int
    content_hash: str
    published_at: datetime
    published_by: str | None
    current: bool


class ChecklistVersionList(RootModel[list[ChecklistVersionSummary]]):
    pass


class ChecklistPublishOutcome(BaseModel):
    """201 when a new version was created, 200 when the definition equals the current version."""

    key: str
    version: int
    created: bool
    content_hash: str
    item_count: int
