"""Event payloads of the checklists area."""

from __future__ import annotations

from pydantic import BaseModel, Field

from schemas.events import event


@event("checklist.published")
class ChecklistPublished(BaseModel):
    """A new immutable version of a checklist became the current one."""

    key: str
    version: int
    content_hash: str = Field(description="sha256 of the canonical JSON of the definition")
    previous_version: int | None = None
    channel: str
    item_count: int
