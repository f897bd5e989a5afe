"""The checklist definition format (YAML in checklists/), validated by these models."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

LANGUAGES: tuple[str, ...] = ("zh-CN", "en", "es")
Language = Literal["zh-CN", "en", "es"]
ItemType = Literal["yes_no", "rating", "number", "single_choice", "multi_choice", "text", "photo", "timer"]
Severity = Literal["minor", "major", "critical"]
Channel = Literal["in_branch", "phone", "online"]
BranchType = Literal["full_service", "community", "self_service", "private_banking"]
ITEM_ID = r"^[a-z][a-z0-9_]{1,63}$"


class Definition(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LocalizedText(Definition):
    """One text in every supported language."""

    zh_CN: str = Field(alias="zh-CN", min_length=1)
    en: str = Field(min_length=1)
    es: str = Field(min_length=1)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def in_language(self, language: str) -> str:
        return {"zh-CN": self.zh_CN, "en": self.en, "es": self.es}.get(language, self.en)


class PhotoPolicy(Definition):
    policy: Literal["none", "optional", "required", "required_on_fail"] = "none"
    min: int = Field(default=0, ge=0, le=20)
    max: int = Field(default=5, ge=0, le=20)

    @model_validator(mode="before")
    @classmethod
    def shorthand(cls, value: Any) -> Any:
        # `photo: required_on_fail` in YAML reads better than a one-key mapping for the common case.
        return {"policy": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def bounds(self) -> PhotoPolicy:
        if self.policy in ("required", "required_on_fail") and self.min < 1:
            self.min = 1
        if self.max < self.min:
            raise ValueError("photo.max is below photo.min")
        return self


class Scale(Definition):
    """A rating scale; ratings at or above `pass_at` meet the standard."""

    min: int = 1
    max: int = 5
    pass_at: int = 4

    @model_validator(mode="after")
    def ordered(self) -> Scale:
        if not self.min < self.max or not self.min <= self.pass_at <= self.max:
            raise ValueError("scale needs min < max and min <= pass_at <= max")
        return self


class Option(Definition):
    id: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    text: LocalizedText
    passing: bool = True


_RULE = re.compile(r"^\s*(<=|>=|<|>|==)\s*(-?\d+(?:\.\d+)?)\s*$")


class PassRule(BaseModel):
    """`<= 10`: the measured number meets the standard when the comparison holds."""

    op: Literal["<", "<=", ">", ">=", "=="]
    value: float

    @classmethod
    def parse(cls, text: str) -> PassRule:
        match = _RULE.match(text)
        if not match:
            raise ValueError(f"pass_rule {text!r} must look like '<= 10'")
        return cls(op=match.group(1), value=float(match.group(2)))  # type: ignore[arg-type]

    def passes(self, measured: float) -> bool:
        return {
            "<": measured < self.value, "<=": measured <= self.value, ">": measured > self.value,
            ">=": measured >= self.value, "==": measured == self.value,
        }[self.op]

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


class ShowIf(Definition):
    """Show an item only when another item's answer matches (hidden items are neither required nor scored)."""

    item: str = Field(pattern=ITEM_ID)
    equals: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")
    failed: bool | None = Field(default=None, description="true: shown when that item failed")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class AppliesTo(Definition):
    branch_types: list[BranchType] | None = None
    channels: list[Channel] | None = None


class Item(Definition):
    id: str = Field(pattern=ITEM_ID, description="Stable across versions")
    type: ItemType
    text: LocalizedText
    guidance: LocalizedText | None = None
    weight: float = Field(default=1.0)
    severity: Severity = "minor"
    critical: bool = Field(default=False, description="Red line: failing it fails the whole audit")
    required: bool = True
    na_allowed: bool = False
    photo: PhotoPolicy = Field(default_factory=PhotoPolicy)
    show_if: ShowIf | None = None
    options: list[Option] | None = None
    scale: Scale | None = None
    pass_rule: str | None = None
    unit: Literal["seconds", "minutes", "count", "percent", "celsius"] | None = None
    applies_to: AppliesTo | None = None

    @field_validator("weight")
    @classmethod
    def positive_weight(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("weight must be positive")
        return value

    @field_validator("pass_rule")
    @classmethod
    def rule_parses(cls, value: str | None) -> str | None:
        if value is not None:
            PassRule.parse(value)
        return value

    @model_validator(mode="after")
    def type_needs(self) -> Item:
        if self.type in ("single_choice", "multi_choice") and not self.options:
            raise ValueError(f"{self.type} item needs options")
        if self.type == "rating" and self.scale is None:
            self.scale = Scale()
        if self.type in ("number", "timer") and self.pass_rule is None:
            raise ValueError(f"{self.type} item needs a pass_rule such as '<= 10'")
        if self.type == "timer" and self.unit not in ("seconds", "minutes"):
            raise ValueError("timer item needs unit seconds or minutes")
        if self.critical and self.severity != "critical":
            self.severity = "critical"
        return self

    @property
    def scored(self) -> bool:
        """Text and photo items document; they carry no points."""
        return self.type not in ("text", "photo")

    def rule(self) -> PassRule | None:
        return PassRule.parse(self.pass_rule) if self.pass_rule else None


class Section(Definition):
    id: str = Field(pattern=ITEM_ID)
    title: LocalizedText
    weight: float = 1.0
    items: list[Item] = Field(min_length=1)

    @field_validator("weight")
    @classmethod
    def positive_weight(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("section weight must be positive")
        return value


class GradeBand(Definition):
    grade: str = Field(min_length=1, max_length=3)
    min_score: float = Field(ge=0, le=100)


def default_grade_bands() -> list[GradeBand]:
    bands = (("A", 90), ("B", 80), ("C", 70), ("D", 60), ("F", 0))
    return [GradeBand(grade=g, min_score=s) for g, s in bands]


class DuePolicy(Definition):
    """Days to fix a finding, counted from the audit's release in the branch's time zone."""

    critical: int = Field(default=1, ge=0, le=365)
    major: int = Field(default=3, ge=0, le=365)
    minor: int = Field(default=7, ge=0, le=365)
    working_days: bool = False


class Checklist(Definition):
    key: str = Field(pattern=r"^[a-z][a-z0-9_-]{1,63}$")
    title: LocalizedText
    description: LocalizedText | None = None
    default_language: Language = "zh-CN"
    channel: Channel = "in_branch"
    sections: list[Section] = Field(min_length=1)
    grade_bands: list[GradeBand] = Field(default_factory=default_grade_bands)
    due_policy: DuePolicy | None = None

    def items(self) -> list[Item]:
        return [item for section in self.sections for item in section.items]

    def item(self, item_id: str) -> Item | None:
        return next((i for i in self.items() if i.id == item_id), None)

    def section_of(self, item_id: str) -> Section | None:
        return next((s for s in self.sections if any(i.id == item_id for i in s.items)), None)
