"""The `digests:` section of rule files: weekly scorecards for managers and a marketing digest.

Kept apart from the lead-handling models (model.py, policy.py) because it answers a different
question: not when a lead is late, but when a summary of last week goes out and to whom.

    digests:
      sdr-weekly:
        kind: scorecard          # one per team, to its managers (DM) or its channel
        teams: [sdr]             # default: every team
        to: managers             # managers | team_channel | "#a-channel"
        every: monday 08:30      # local time of the team's calendar (or `calendar:`)
        on_holiday: next_open_day
      marketing-weekly:
        kind: marketing
        channel: "#marketing"
        every: monday 09:00      # local time of `calendar:` (default: settings.default_calendar)

A digest covers the last full week (Monday 00:00 to Monday 00:00 in its calendar's zone) before
the week it is sent in.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Any, Literal, Protocol

from pydantic import Field, PlainSerializer, PlainValidator, WithJsonSchema, model_validator

from sla_bot.businesstime import DAY_NAMES
from sla_bot.rules.base import Base, Channel, Name
from sla_bot.rules.fields import fail_at
from sla_bot.rules.yamlpos import Path

_DAYS = {name.lower(): i for i, name in enumerate(DAY_NAMES)}
_DAYS |= {name[:3].lower(): i for i, name in enumerate(DAY_NAMES)}


class Weekly(tuple[int, time]):
    """(weekday 0=Monday, local time): when a weekly digest goes out."""

    @property
    def weekday(self) -> int:
        return self[0]

    @property
    def at(self) -> time:
        return self[1]

    def __str__(self) -> str:
        return f"{DAY_NAMES[self[0]].lower()} {self[1]:%H:%M}"


def _weekly(value: Any) -> Weekly:
    m = re.fullmatch(r"\s*([A-Za-z]+)\s+([0-9]{1,2}):([0-9]{2})\s*", str(value))
    day = _DAYS.get(m[1].lower()) if m else None
    if m is None or day is None or int(m[2]) > 23 or int(m[3]) > 59:
        raise fail_at(
            (), f'bad schedule "{value}": expected a weekday and a local time, e.g. "monday 08:30"'
        )
    return Weekly((day, time(int(m[2]), int(m[3]))))


WeeklyField = Annotated[
    Weekly,
    PlainValidator(_weekly),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(
        {"type": "string", "description": 'weekday and local time, e.g. "monday 08:30"'}
    ),
]


class Digest(Base):
    """A weekly summary posted to Slack: a team scorecard, or the marketing digest."""

    kind: Literal["scorecard", "marketing"]
    """scorecard: one per team, for its manager; marketing: per source and campaign."""
    every: WeeklyField
    """When it goes out, e.g. "monday 08:30", in the local time of its calendar."""
    calendar: Name | None = None
    """Whose local time and holidays; default: the team's calendar (scorecard) or
    settings.default_calendar (marketing)."""
    on_holiday: Literal["next_open_day", "skip"] = "next_open_day"
    """When the day is a holiday or closed in the calendar: send on the next day the calendar is
    open, at the same time, or skip that week."""
    teams: Annotated[list[Name], Field(min_length=1)] | None = None
    """scorecard: the teams that get one; default: every team."""
    to: Literal["managers", "team_channel"] | Channel = "managers"
    """scorecard: managers (a DM to each), team_channel, or a channel ("#name" or an id)."""
    channel: Channel | None = None
    """marketing: the channel it goes to, e.g. "#marketing" (quote it: # starts a comment)."""
    portal: int | None = None
    """Only this HubSpot portal's leads; default: all portals."""
    link_expires_days: Annotated[int, Field(ge=1, le=31)] = 14
    """How long the signed link to the reports page in the message works."""

    @model_validator(mode="after")
    def _fits_kind(self) -> Digest:
        if self.kind == "marketing":
            if self.channel is None:
                raise fail_at(("channel",), 'a marketing digest needs a channel, e.g. "#marketing"')
            for key in ("teams", "to"):
                if key in self.model_fields_set:
                    raise fail_at(
                        (key,), f"'{key}' is for scorecards; a marketing digest has `channel:`"
                    )
        elif "channel" in self.model_fields_set:
            raise fail_at(
                ("channel",),
                "a scorecard goes `to:` managers, team_channel or a "
                "channel; `channel:` is for the marketing digest",
            )
        return self


class Checker(Protocol):
    """What validate.py's cross-reference checker offers (kept structural: no private import)."""

    defs: Any

    def at(
        self, section: str, name: str, sub: Path, message: str, *, key: bool = False
    ) -> None: ...

    def ref(self, section: str, target: str | None, where: tuple[str, str], sub: Path) -> bool: ...


def check(checker: Checker) -> None:
    """References (teams, calendars) and what a digest needs from its teams."""
    defs = checker.defs
    default = defs.settings.get("default_calendar")
    scored: dict[tuple[str, int | None], str] = {}  # (team, portal) -> the digest scoring it
    for name, d in defs.items["digests"].items():
        where = ("digests", name)
        calendar_ok = checker.ref("calendars", d.calendar, where, ("calendar",))
        if d.kind == "marketing":
            if not (d.calendar or default):
                checker.at(
                    *where,
                    ("every",),
                    "a marketing digest needs `calendar:` or "
                    "settings.default_calendar (whose local time is `every`?)",
                )
            continue
        teams = d.teams if d.teams is not None else sorted(defs.items["teams"])
        for i, team_name in enumerate(d.teams or []):
            checker.ref("teams", team_name, where, ("teams", i))
        for team_name in teams:
            first = scored.setdefault((team_name, d.portal), name)
            if first != name:
                checker.at(
                    *where,
                    ("teams",) if d.teams else ("kind",),
                    f"team '{team_name}' "
                    f"already gets a scorecard from '{first}' (one per team and portal)",
                )
            team = defs.items["teams"].get(team_name)
            if team is None:
                continue
            if d.to == "managers" and not team.managers:
                checker.at(*where, ("to",), f"team '{team_name}' has no managers to send to")
            if d.to == "team_channel" and not team.channel:
                checker.at(*where, ("to",), f"team '{team_name}' has no channel")
            if not (calendar_ok or team.calendar or default):
                checker.at(
                    *where, ("every",), f"team '{team_name}' has no calendar: set `calendar:` here"
                )
