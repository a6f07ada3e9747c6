"""The rule-file format as pydantic models: one `RulesFile` per YAML file.

Field docstrings become descriptions in rules/schema.json, which editors use for completion, so
they are written for the sales-ops person editing the YAML. Policies live in policy.py.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import holidays as holidays_pkg
from pydantic import BeforeValidator, Field, StringConstraints, field_validator, model_validator

from sla_bot.rules.base import Base, Channel, DateRange, DateRanges, Name
from sla_bot.rules.digests import Digest
from sla_bot.rules.fields import (
    EMAIL_PATTERN,
    SLACK_USER_PATTERN,
    OwnerId,
    SelectorField,
    TimeZoneField,
    WallDurationField,
    WeeklyHoursField,
    WindowsField,
    fail_at,
)
from sla_bot.rules.policy import (
    Action,
    Cadence,
    Disqualification,
    EscalationStep,
    FirstTouch,
    Noise,
    Pause,
    Policy,
    QuietHours,
    Recycle,
    Repeat,
    Touches,
    WarningRule,
)
from sla_bot.rules.select import ALWAYS

IGNORE = "ignore"
__all__ = [
    "IGNORE",
    "Action",
    "Cadence",
    "Calendar",
    "DateRange",
    "Digest",
    "Disqualification",
    "EscalationStep",
    "FirstTouch",
    "HolidaySource",
    "LeadRule",
    "Member",
    "Noise",
    "Pause",
    "Person",
    "Policy",
    "QuietHours",
    "Recycle",
    "Repeat",
    "Routing",
    "RulesFile",
    "Settings",
    "Team",
    "Touches",
    "WarningRule",
]


# --- calendars ---------------------------------------------------------------------------------


class HolidaySource(Base):
    country: str
    """ISO country code understood by the `holidays` package, e.g. US, GB, DE."""
    subdivision: str | None = None
    """State or region, e.g. NY for New York or BY for Bavaria."""
    observed: bool = True
    """Also close on the weekday a weekend holiday is observed."""
    skip: list[str] = []
    """Holiday names the team works anyway, e.g. ["Columbus Day"]."""

    @model_validator(mode="after")
    def _known(self) -> HolidaySource:
        supported = holidays_pkg.list_supported_countries()
        if self.country not in supported:
            raise fail_at(
                ("country",),
                f"unknown holiday country '{self.country}' (use an ISO code like US, GB, DE)",
            )
        subdivisions = supported[self.country]
        if self.subdivision is not None and self.subdivision not in subdivisions:
            shown = ", ".join(subdivisions[:12]) + (", ..." if len(subdivisions) > 12 else "")
            raise fail_at(
                ("subdivision",),
                f"unknown subdivision '{self.subdivision}' for "
                f"{self.country} (known: {shown or 'none'})",
            )
        return self


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


class Calendar(Base):
    """When the clock runs: business time only counts inside these hours."""

    timezone: TimeZoneField
    hours: WeeklyHoursField
    holidays: Annotated[list[HolidaySource], BeforeValidator(_one_or_many)] = []
    """Public holidays, e.g. {country: US, subdivision: NY}; a list combines several."""
    closed: DateRanges = []
    """Extra closed dates or ranges: a date, or {from: 2026-12-24, to: 2026-12-31}."""
    open: dict[date, WindowsField] = {}
    """Extra open dates with their hours, e.g. {2026-11-28: "09:00-13:00"}."""
    business_day: WallDurationField | None = None
    """Length of "1 business day"; default: the longest day in `hours`."""


# --- teams -------------------------------------------------------------------------------------


class Person(Base):
    name: str | None = None
    owner_id: OwnerId | None = None
    """HubSpot owner id (the `id`, not `userId`)."""
    email: Annotated[str, StringConstraints(pattern=EMAIL_PATTERN)] | None = None
    slack: Annotated[str, StringConstraints(pattern=SLACK_USER_PATTERN)] | None = None
    """Slack user id (U...); default: looked up by email."""

    @model_validator(mode="after")
    def _identified(self) -> Person:
        if not (self.owner_id or self.email or self.slack):
            raise fail_at((), "a person needs an owner_id, an email or a slack id")
        return self

    def label(self) -> str:
        return (
            self.name
            or self.email
            or (f"owner {self.owner_id}" if self.owner_id else "")
            or (self.slack or "?")
        )


class Member(Person):
    calendar: str | None = None
    """This rep's own calendar; default: the team's."""
    timezone: TimeZoneField | None = None
    """Same hours as the calendar, but in this rep's time zone."""
    out_of_office: DateRanges = []
    """Dates away: skipped by reassign and not DMed."""

    @model_validator(mode="after")
    def _hubspot_identity(self) -> Member:
        if not (self.owner_id or self.email):
            raise fail_at((), "a member needs an owner_id or an email to match HubSpot owners")
        return self


class Team(Base):
    description: str | None = None
    calendar: str | None = None
    """Calendar for members without their own; default: settings.default_calendar."""
    channel: Channel | None = None
    """Slack channel for escalations, "#name" or a channel id."""
    managers: list[Person] = []
    members: Annotated[list[Member], Field(min_length=1)]
    noise: Noise | None = None
    """Batching and hourly cap for this team's managers and channel (wins over the policy's)."""

    @field_validator("members")
    @classmethod
    def _unique(cls, members: list[Member]) -> list[Member]:
        seen: dict[str, int] = {}
        for i, member in enumerate(members):
            for ident in filter(None, (member.owner_id, (member.email or "").lower())):
                if ident in seen:
                    raise fail_at(
                        (i,), f"'{ident}' is listed twice (also member {seen[ident] + 1})"
                    )
                seen[ident] = i
        return members


# --- routing -----------------------------------------------------------------------------------


class LeadRule(Base):
    name: Name
    when: SelectorField = ALWAYS
    """Which contacts this is; omit to match every lead."""
    policy: str
    """Policy name, or "ignore"."""


class Routing(Base):
    description: str | None = None
    portals: Annotated[list[int], Field(min_length=1)] | None = None
    """HubSpot portal ids this block serves; omit for every portal without its own block."""
    leads: list[LeadRule] = []
    """Checked in order; the first match wins."""
    fallback: str
    """Policy for leads no rule matched, or "ignore"."""


class Settings(Base):
    default_calendar: str | None = None
    """Calendar for teams and policies that name none."""


def _drop_extensions(value: Any) -> Any:
    """Top-level keys starting with x- hold YAML anchors to reuse (`x-hours: &hours ...`)."""
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if not str(k).startswith("x-")}
    return value


class RulesFile(Base):
    """One rules YAML file. Names are global across all files of the directory."""

    settings: Settings | None = None
    calendars: dict[Name, Calendar] = {}
    teams: dict[Name, Team] = {}
    policies: dict[Name, Policy] = {}
    routing: dict[Name, Routing] = {}
    digests: dict[Name, Digest] = {}
    """Weekly scorecards and the marketing digest (see docs/rules.md#digests)."""

    @model_validator(mode="before")
    @classmethod
    def _extensions(cls, value: Any) -> Any:
        return _drop_extensions(value)
