"""Shared building blocks of the rule-file models: the strict base model and date ranges."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from sla_bot.durations import Duration
from sla_bot.rules.fields import CHANNEL_PATTERN, NAME_PATTERN, date_range_of, fail_at

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Channel = Annotated[str, StringConstraints(pattern=CHANNEL_PATTERN)]
_EMPTY_CHANNEL = "is empty: in YAML # starts a comment, so quote the channel, e.g. '#sales'"


class Base(BaseModel):
    """Unknown keys are errors everywhere: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    @model_validator(mode="before")
    @classmethod
    def _commented_out_channel(cls, value: Any) -> Any:
        """`channel: #sales` parses as an empty value; say why instead of dropping it."""
        if isinstance(value, dict):
            for key, item in value.items():
                if item is None and str(key).endswith("channel"):
                    raise fail_at((key,), f"{key} {_EMPTY_CHANNEL}")
        return value


class DateRange(Base):
    """Inclusive dates; a bare date means that one day."""

    from_: date = Field(alias="from")
    to: date
    reason: str | None = None

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.to < self.from_:
            raise fail_at(("to",), f"'to' ({self.to}) is before 'from' ({self.from_})")
        return self


DateRanges = list[Annotated[DateRange, BeforeValidator(date_range_of)]]


def compare(a: Duration, b: Duration) -> int | None:
    """-1/0/1 comparing a with b when they are the same kind of time, else None (no false alarm).

    Business days are only comparable with business days: their length comes from a calendar.
    """
    if a.business != b.business or (a.business and (a.unit == "days") != (b.unit == "days")):
        return None
    return (a.seconds > b.seconds) - (a.seconds < b.seconds)
