"""Reading outcome facts for a report: the database counts, Python does the rest.

A report is a cohort: the leads whose first-touch clock started in [since, until). A year of
history is 100k leads, so each count is one `SUM(CASE ...)` of a single grouped query, and only
what needs every value is fetched row by row: times to first touch (for medians and p90) and
the few leads that got further than a touch (for the funnel's waits). Each count is defined
once, as the condition in `WHO`, and the drill-down lists the leads matching that same
condition, so a number and the leads behind it cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Connection,
    and_,
    case,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.sql.elements import ColumnElement

from sla_bot.db.schema import lead_outcome_events, lead_outcomes
from sla_bot.db.types import UTCDateTime

GROUPINGS = ("rep", "team", "policy", "source", "campaign", "week")
UNCONVERTED = ("disqualified", "recycled")
o = lead_outcomes.c
_touched = o.first_touch_at.is_not(None)
_met = o.result == "met"
_connected = o.connected_at.is_not(None)
_unconverted = o.outcome.in_(UNCONVERTED)
# Which leads each count counts (and a drill-down lists).
WHO: dict[str, ColumnElement[bool]] = {
    "all": true(),
    "touched": _touched,
    "met": _met,
    "breached": o.result == "breached",
    "pending": o.result.is_(None),
    "decided": o.result.is_not(None),
    "met_touched": and_(_met, _touched),
    "connected": _connected,
    "connected_touched": and_(_connected, _touched),
    "unconverted": _unconverted,
    "first": and_(_unconverted, func.coalesce(o.touches_before_outcome, 0) >= o.min_touches),
    "premature": o.premature_dq > 0,
    "qualified": o.qualified_at.is_not(None),
    "opportunity": o.opportunity_at.is_not(None),
    "customer": o.customer_at.is_not(None),
    "backfilled": o.backfilled == 1,
}
# How long leads waited before each stage after a touch (recorded with the facts).
WAITS = {
    "connected": "connected_after_s",
    "qualified": "qualified_after_s",
    "opportunity": "opportunity_after_s",
    "customer": "customer_after_s",
}
NONE_LABEL = {"rep": "(no owner)", "source": "(unknown)", "campaign": "(none)"}


@dataclass(frozen=True)
class Filters:
    """What a report covers and how it groups. `tz`: weeks start Monday 00:00 there, and bare
    dates in --since/--until are midnights there."""

    by: str = "rep"
    since: datetime | None = None
    until: datetime | None = None
    portal: int | None = None
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    team: str | None = None  # only the leads of this team (the rules' team name)

    def __post_init__(self) -> None:
        if self.by not in GROUPINGS:
            known = ", ".join(GROUPINGS)
            raise ValueError(f"unknown grouping {self.by!r}: expected one of {known}")


def parse_when(text: str, tz: ZoneInfo) -> datetime:
    """YYYY-MM-DD (midnight in `tz`) or an ISO-8601 time with its offset; ValueError says how."""
    text = text.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=tz).astimezone(UTC)
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"bad date {text!r}: expected YYYY-MM-DD or an ISO-8601 time such as "
            "2026-11-02T08:00:00-05:00"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.astimezone(UTC)


def utc(t: datetime) -> datetime:
    """Times read without a per-value conversion are naive UTC on SQLite."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def monday(t: datetime, tz: ZoneInfo) -> date:
    day = utc(t).astimezone(tz).date()
    return day - timedelta(days=day.weekday())


def week_start(day: date, tz: ZoneInfo) -> datetime:
    """Monday 00:00 in `tz` as a UTC instant (daylight saving time moves it, not the day)."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def week_label(key: str) -> str:
    day = date.fromisoformat(key)
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d} ({key})"


def _window(query: Any, f: Filters) -> Any:
    if f.since is not None:
        query = query.where(o.started_at >= f.since)
    if f.until is not None:
        query = query.where(o.started_at < f.until)
    if f.portal is not None:
        query = query.where(o.portal_id == f.portal)
    if f.team is not None:
        query = query.where(o.team == f.team)
    return query


def _weeks(conn: Connection, f: Filters) -> list[date]:
    """Every Monday from the first lead's week to the last's (in `f.tz`)."""
    first, last = conn.execute(
        _window(select(func.min(o.started_at), func.max(o.started_at)), f)
    ).one()
    if first is None:
        return []
    day, end, out = monday(first, f.tz), monday(last, f.tz), []
    while day <= end:
        out.append(day)
        day += timedelta(days=7)
    return out


def _key(conn: Connection, f: Filters) -> ColumnElement[str]:
    """The group of a lead, as SQL: a column's value ('' for none), or its week's Monday."""
    if f.by == "week":
        weeks = _weeks(conn, f)
        if len(weeks) < 2:
            return literal(weeks[0].isoformat() if weeks else "")
        ends = [(literal(week_start(d + timedelta(days=7), f.tz), UTCDateTime), d) for d in weeks]
        return case(
            *((o.started_at < end, d.isoformat()) for end, d in ends[:-1]),
            else_=ends[-1][1].isoformat(),
        )
    column = o.owner_id if f.by == "rep" else o[f.by]
    return func.coalesce(column, "")


def _in_group(f: Filters, key: str) -> ColumnElement[bool]:
    if f.by == "week":
        day = date.fromisoformat(key)
        start, end = week_start(day, f.tz), week_start(day + timedelta(days=7), f.tz)
        return and_(o.started_at >= start, o.started_at < end)
    column = o.owner_id if f.by == "rep" else o[f.by]
    return func.coalesce(column, "") == key


@dataclass
class Gathered:
    """One group's raw material: its counts, and the values medians need."""

    key: str
    label: str
    counts: dict[str, int]
    business: list[int] = field(default_factory=list)
    wall: list[int] = field(default_factory=list)
    waits: dict[str, list[int]] = field(default_factory=lambda: {s: [] for s in WAITS})


COUNTED = tuple(k for k in WHO if k != "all")


def gather(conn: Connection, f: Filters) -> dict[str, Gathered]:
    """Per group: every count of WHO, the speeds of its touched leads, and how long its leads
    that got further than a touch waited before each stage."""
    key = _key(conn, f).label("grp")
    sums = [func.sum(case((WHO[k], 1), else_=0)).label(k) for k in COUNTED]
    columns = [key, func.count().label("all"), func.sum(o.touches).label("touches"), *sums]
    if f.by == "rep":
        columns.append(func.max(o.owner_name).label("name"))
    groups: dict[str, Gathered] = {}
    # Grouped by the output column's name: the key expression carries bound parameters.
    query = _window(select(*columns), f).group_by(literal_column("grp"))
    for row in conn.execute(query).all():
        counts = {k: int(row._mapping[k] or 0) for k in ("all", "touches", *COUNTED)}
        groups[row.grp] = Gathered(row.grp, _label(f, row.grp, row), counts)
    speeds = select(key, o.business_seconds, o.wall_seconds).where(WHO["touched"])
    for k, business, wall in conn.execute(_window(speeds, f)).all():
        g = groups[k]
        if business is not None:
            g.business.append(business)
        if wall is not None:
            g.wall.append(wall)
    stages = list(WAITS)
    further = select(key, *(o[WAITS[s]] for s in stages)).where(
        or_(*(o[WAITS[s]].is_not(None) for s in stages))
    )
    for k, *seconds in conn.execute(_window(further, f)).all():
        waits = groups[k].waits
        for stage, value in zip(stages, seconds, strict=True):
            if value is not None:
                waits[stage].append(value)
    return groups


def _label(f: Filters, key: str, row: Any) -> str:
    if f.by == "week":
        return week_label(key) if key else "(none)"
    if f.by == "rep":
        return row.name or f"owner {key}" if key else NONE_LABEL["rep"]
    return key or NONE_LABEL.get(f.by, "(none)")


def premature(conn: Connection, f: Filters) -> list[Any]:
    """Each premature disqualification in the report: when, "touches/needed", and whose."""
    e = lead_outcome_events.c
    query = (
        select(e.at, e.detail, o.portal_id, o.object_id, o.name, o.owner_id, o.owner_name)
        .add_columns(o.min_touches)
        .join(lead_outcomes, o.lead_id == e.lead_id)
        .where(e.kind == "premature_dq", o.premature_dq > 0)
        .order_by(e.at, o.portal_id, o.object_id, e.id)
    )
    return list(conn.execute(_window(query, f)).all())


def behind(conn: Connection, f: Filters, group: str | None, who: str) -> list[Any]:
    """The leads one count counts (`who`, a key of WHO) in one group (None: all), oldest clock
    start first: every column of `lead_outcomes`."""
    query = select(lead_outcomes).where(WHO[who])
    if group is not None:
        query = query.where(_in_group(f, group))
    query = query.order_by(o.started_at, o.lead_id)
    return list(conn.execute(_window(query, f)).all())
