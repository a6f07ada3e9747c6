"""Field types of the rule-file models: durations, hours, time zones, selectors, warnings.

Each type parses the human form once (so the rest of the code works with real objects), dumps back
to the same human form (so policy snapshots read like the file), and describes itself in the JSON
schema. Errors inside a structured value carry a sub-path in their context so the loader can point
at the exact YAML node (see `fail_at`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, PlainSerializer, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from sla_bot.businesstime import DAY_NAMES, CalendarError, Window
from sla_bot.durations import Duration, DurationError, parse_duration
from sla_bot.rules.select import Selector, SelectorError
from sla_bot.rules.select_parse import parse_selector
from sla_bot.rules.yamlpos import KEY, Path

SELECTOR_SCHEMA_MARK = {"x-sla-bot": "selector"}
_DURATION_HINT = 'e.g. 30s, 5m, 2h, 3d, "4 business hours", "2 business days"'


def fail_at(path: Path, message: str) -> PydanticCustomError:
    """A validation error that the loader reports at `loc + path` instead of at the field."""
    return PydanticCustomError("rules_at", "{message}", {"message": message, "path": path})


def fail_many(problems: list[tuple[Path, str]]) -> PydanticCustomError:
    """Several errors in one structured value (e.g. a selector), each at its own sub-path."""
    joined = "; ".join(m for _, m in problems)
    return PydanticCustomError("rules_many", "{message}", {"message": joined, "problems": problems})


# --- durations ---------------------------------------------------------------------------------


def _duration(value: Any) -> Duration:
    if isinstance(value, Duration):
        return value
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise fail_at((), str(exc)) from None


def _wall_duration(value: Any) -> Duration:
    d = _duration(value)
    if d.business:
        raise fail_at((), f'"{d.text}" must be wall-clock time here, e.g. 8h')
    return d


_DURATION_JSON = {"type": "string", "description": f"A duration, {_DURATION_HINT}"}
DurationField = Annotated[
    Duration,
    PlainValidator(_duration),
    PlainSerializer(lambda d: d.text, return_type=str),
    WithJsonSchema(_DURATION_JSON),
]
WallDurationField = Annotated[
    Duration,
    PlainValidator(_wall_duration),
    PlainSerializer(lambda d: d.text, return_type=str),
    WithJsonSchema({"type": "string", "description": "A wall-clock duration, e.g. 8h or 7h30m"}),
]

# --- warnings: "80%" or "10m before" -----------------------------------------------------------


@dataclass(frozen=True)
class WarnAt:
    """When to warn: at a fraction of the target, or a duration before the deadline."""

    text: str
    fraction: float | None = None
    before: Duration | None = None


def _warn_at(value: Any) -> WarnAt:
    if isinstance(value, WarnAt):
        return value
    text = str(value).strip()
    if m := re.fullmatch(r"([0-9]{1,2})\s*%", text):
        pct = int(m[1])
        if 1 <= pct <= 99:
            return WarnAt(f"{pct}%", fraction=pct / 100)
    elif m := re.fullmatch(r"(.+?)\s+before", text):
        return WarnAt(text, before=_duration(m[1]))
    raise fail_at((), f'bad warning "{text}": expected a percentage like 80% or "10m before"')


WarnAtField = Annotated[
    WarnAt,
    PlainValidator(_warn_at),
    PlainSerializer(lambda w: w.text, return_type=str),
    WithJsonSchema({"type": "string", "description": 'e.g. "80%", "10m before"'}),
]

# --- time zones, names, ids --------------------------------------------------------------------


def _zone(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise fail_at((), f"time zone must be a name like America/New_York, got {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail_at((), f"unknown time zone '{value}' (expected e.g. America/New_York)") from None
    return value


TimeZoneField = Annotated[
    str,
    PlainValidator(_zone),
    WithJsonSchema({"type": "string", "description": "IANA time zone, e.g. America/New_York"}),
]


def _id_text(value: Any) -> Any:
    """Owner and portal ids are numbers in HubSpot but text in properties: accept both."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


OwnerId = Annotated[str, BeforeValidator(_id_text)]
PropertyValue = Annotated[str, BeforeValidator(_id_text)]
CHANNEL_PATTERN = r"^(#[a-z0-9][a-z0-9._-]{0,79}|[CG][A-Z0-9]{6,})$"
SLACK_USER_PATTERN = r"^[UW][A-Z0-9]{6,}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"

# --- hours -------------------------------------------------------------------------------------

_DAYS = {name[:3].lower(): i for i, name in enumerate(DAY_NAMES)}
_DAYS |= {name.lower(): i for i, name in enumerate(DAY_NAMES)}
_DAY_GROUPS = {
    "weekdays": range(5),
    "weekends": range(5, 7),
    "weekend": range(5, 7),
    "daily": range(7),
    "every day": range(7),
}
ALWAYS_OPEN = "24/7"
Windows = tuple[Window, ...]


def parse_windows(value: Any) -> Windows:
    """ "08:00-12:00", a list of those, or "closed"; raises ValueError with a readable message."""
    if isinstance(value, str) and value.strip().lower() == "closed":
        return ()
    items = value if isinstance(value, list) else [value]
    out: list[Window] = []
    for item in items:
        text = str(item).strip()
        padded = re.sub(r"(?<![0-9])([0-9]):", r"0\1:", text)
        try:
            out.append(Window.parse(padded))
        except CalendarError as exc:
            raise ValueError(str(exc)) from None
    for w in out:
        if w.end is not None and w.end <= w.start:
            raise ValueError(
                f"window {w} ends before it starts; a shift past midnight is two windows, "
                f"e.g. {Window(w.start)} and {Window(time(0), w.end)} on the next day"
            )
    ordered = sorted(out, key=lambda w: w.start)
    for prev, cur in zip(ordered, ordered[1:], strict=False):
        if prev.end is None or cur.start < prev.end:
            raise ValueError(f"windows {prev} and {cur} overlap")
    return tuple(ordered)


def _days(key: str) -> list[int] | None:
    k = " ".join(key.lower().split())
    if k in _DAYS:
        return [_DAYS[k]]
    if k in _DAY_GROUPS:
        return list(_DAY_GROUPS[k])
    if m := re.fullmatch(r"([a-z]+)\s*-\s*([a-z]+)", k):
        a, b = _DAYS.get(m[1]), _DAYS.get(m[2])
        if a is not None and b is not None and a <= b:
            return list(range(a, b + 1))
    return None


@dataclass(frozen=True)
class WeeklyHours:
    """Open windows per weekday (0 = Monday); `text` keeps the file form for dumps."""

    days: Mapping[int, Windows]
    text: Any


def _weekly(value: Any) -> WeeklyHours:
    if isinstance(value, WeeklyHours):
        return value
    if isinstance(value, str) and value.strip() == ALWAYS_OPEN:
        return WeeklyHours({d: (Window(time(0)),) for d in range(7)}, ALWAYS_OPEN)
    if not isinstance(value, Mapping):
        raise fail_at((), 'hours must be "24/7" or a mapping like {mon-fri: "08:00-18:00"}')
    problems: list[tuple[Path, str]] = []
    days: dict[int, Windows] = {}
    seen: dict[int, str] = {}
    for key, spec in value.items():
        numbers = _days(str(key))
        if numbers is None:
            problems.append(
                (
                    (key, KEY),
                    f"unknown day '{key}': use mon..sun, ranges like mon-fri, "
                    f"or weekdays/weekends/daily",
                )
            )
            continue
        try:
            windows = parse_windows(spec)
        except ValueError as exc:
            problems.append(((key,), f"{key}: {exc}"))
            continue
        for n in numbers:
            if n in seen:
                problems.append(((key, KEY), f"{DAY_NAMES[n]} is already set by '{seen[n]}'"))
                break
            seen[n] = str(key)
            days[n] = windows
    if problems:
        raise fail_many(problems)
    if not any(days.values()):
        raise fail_at((), "no open hours on any day")
    return WeeklyHours(days, dict(value))


_WINDOWS_JSON: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "description": '"08:00-12:00" or "closed"'},
        {"type": "array", "items": {"type": "string"}},
    ]
}
WeeklyHoursField = Annotated[
    WeeklyHours,
    PlainValidator(_weekly),
    PlainSerializer(lambda h: h.text, return_type=Any),
    WithJsonSchema(
        {
            "description": 'Open hours: "24/7", or day (mon, mon-fri, weekdays, ...) -> windows',
            "anyOf": [
                {"const": ALWAYS_OPEN},
                {"type": "object", "additionalProperties": _WINDOWS_JSON},
            ],
        }
    ),
]


def _windows(value: Any) -> Windows:
    try:
        return parse_windows(value)
    except ValueError as exc:
        raise fail_at((), str(exc)) from None


WindowsField = Annotated[
    Windows,
    PlainValidator(_windows),
    PlainSerializer(lambda ws: [str(w) for w in ws], return_type=list[str]),
    WithJsonSchema(_WINDOWS_JSON),
]


def _local_range(value: Any) -> tuple[time, time]:
    """Quiet hours like "20:00-08:00": may wrap past midnight, unlike open windows."""
    m = re.fullmatch(r"\s*([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})\s*", str(value))
    if m is None or int(m[1]) > 23 or int(m[3]) > 23 or int(m[2]) > 59 or int(m[4]) > 59:
        raise fail_at((), f'bad local hours "{value}": expected e.g. "20:00-08:00"')
    start, end = time(int(m[1]), int(m[2])), time(int(m[3]), int(m[4]))
    if start == end:
        raise fail_at((), f'"{value}" is empty: start and end are equal')
    return start, end


LocalRangeField = Annotated[
    tuple[time, time],
    PlainValidator(_local_range),
    PlainSerializer(lambda r: f"{r[0]:%H:%M}-{r[1]:%H:%M}", return_type=str),
    WithJsonSchema({"type": "string", "description": 'local hours, e.g. "20:00-08:00"'}),
]

# --- selectors ---------------------------------------------------------------------------------


def _selector(value: Any) -> Selector:
    try:
        return parse_selector(value)
    except SelectorError as exc:
        raise fail_many(exc.problems) from None


SelectorField = Annotated[
    Selector,
    PlainValidator(_selector),
    PlainSerializer(lambda s: s.raw, return_type=Any),
    WithJsonSchema(SELECTOR_SCHEMA_MARK),
]


def date_range_of(value: Any) -> Any:
    """A bare date in a list of ranges means that one day."""
    if isinstance(value, date | str):
        return {"from": value, "to": value}
    return value
