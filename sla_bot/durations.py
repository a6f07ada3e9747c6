"""SLA durations as written in rule files: wall-clock ("5m") or business time ("4 business hours").

The two kinds are kept apart on purpose: a wall duration is a fixed timedelta, a business duration
only means something against a BusinessCalendar (which decides what time counts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sla_bot.businesstime import BusinessCalendar

UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
# An SLA longer than a year is a typo, and capping keeps calendar arithmetic bounded.
MAX_SECONDS = 366 * 86400
_HINT = 'expected e.g. 30s, 5m, 2h, 3d or "4 business hours", "2 business days"'

# Wall parts in descending order, each at most once: "1w2d3h4m5s", "1h30m", "1h 30m".
_WALL_PARTS = (
    ("w", "days", 7),
    ("d", "days", 1),
    ("h", "hours", 1),
    ("m", "minutes", 1),
    ("s", "seconds", 1),
)
_WALL_RE = re.compile(r"\s*".join(rf"(?:(?P<{p}>[0-9]{{1,12}})\s*{p})?" for p, _, _ in _WALL_PARTS))
_BUSINESS_RE = re.compile(r"(?P<n>[0-9]{1,12})\s+business\s+(?P<unit>second|minute|hour|day)s?")
# Spelled-out wall units ("15 minutes", "2 hrs"): refused, but with the spelling that works.
_WORDY_RE = re.compile(
    r"(?P<n>[0-9]{1,12})\s*"
    r"(?P<unit>s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?)"
)


class DurationError(ValueError):
    """A duration that cannot be parsed or used; the message says what is accepted."""


@dataclass(frozen=True)
class Duration:
    """A parsed duration.

    `seconds` is wall seconds for wall durations and business seconds for business ones, except
    business days: their length comes from the calendar (use `business_seconds`), so `seconds`
    holds a nominal amount * 86400 that is only good for rough ordering.
    """

    seconds: int
    business: bool
    unit: str
    amount: int
    text: str

    def __str__(self) -> str:
        return self.text

    def as_timedelta(self) -> timedelta:
        """The fixed length of a wall duration; business time has none without a calendar."""
        if self.business:
            raise DurationError(f'"{self.text}" is business time: its length depends on a calendar')
        return timedelta(seconds=self.seconds)

    def business_seconds(self, calendar: BusinessCalendar) -> int:
        """Open seconds to count on `calendar`; a business day is its `business_day_seconds`."""
        if not self.business:
            raise DurationError(f'"{self.text}" is wall-clock time, not business time')
        if self.unit == "days":
            return self.amount * calendar.business_day_seconds
        return self.seconds


def parse_duration(text: str | int) -> Duration:
    """Parse a rule-file duration; anything ambiguous is refused rather than guessed."""
    if not isinstance(text, str):
        # A bare YAML number has no unit: 5 could mean seconds or minutes, so refuse it.
        raise DurationError(f"bad duration {text!r}: a unit is required, {_HINT}")
    cleaned = " ".join(text.lower().split())
    if match := _BUSINESS_RE.fullmatch(cleaned):
        return _business(text, int(match["n"]), match["unit"] + "s")
    if cleaned and (match := _WALL_RE.fullmatch(cleaned)):
        return _wall(text, match)
    if match := _WORDY_RE.fullmatch(cleaned):
        raise DurationError(f'bad duration "{text}": {_suggestion(match)}')
    raise DurationError(f'bad duration "{text}": {_HINT}')


def _suggestion(match: re.Match[str]) -> str:
    """'15 minutes' -> 'write 15m for wall-clock time, or "15 business minutes"...'."""
    n, letter = match["n"], match["unit"][0]
    wall = f"write {n}{letter} for wall-clock time"
    if letter == "w":
        return wall
    word = {"s": "second", "m": "minute", "h": "hour", "d": "day"}[letter]
    plural = "" if n == "1" else "s"
    return f'{wall}, or "{n} business {word}{plural}" for business time'


def _business(text: str, amount: int, unit: str) -> Duration:
    if amount == 0:
        raise DurationError(f'bad duration "{text}": zero is only allowed as 0s or 0m')
    seconds = amount * UNIT_SECONDS[unit]
    _check_max(text, seconds)
    label = unit[:-1] if amount == 1 else unit
    return Duration(seconds, True, unit, amount, f"{amount} business {label}")


def _wall(text: str, match: re.Match[str]) -> Duration:
    parts = [(p, unit, int(match[p]) * mult) for p, unit, mult in _WALL_PARTS if match[p]]
    seconds = sum(n * UNIT_SECONDS[unit] for _, unit, n in parts)
    if seconds == 0:
        if len(parts) == 1 and parts[0][0] in ("s", "m"):
            p, unit, _ = parts[0]
            return Duration(0, False, unit, 0, f"0{p}")
        raise DurationError(f'bad duration "{text}": zero is only allowed as 0s or 0m')
    _check_max(text, seconds)
    nonzero = [(p, unit, n) for p, unit, n in parts if n]
    smallest = nonzero[-1][1]
    canonical = "".join(f"{int(match[p])}{p}" for p, _, _ in nonzero)
    return Duration(seconds, False, smallest, seconds // UNIT_SECONDS[smallest], canonical)


def _check_max(text: str, seconds: int) -> None:
    if seconds > MAX_SECONDS:
        raise DurationError(f'bad duration "{text}": longer than the maximum of 366 days')
