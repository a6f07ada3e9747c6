"""Making a report from the database: what `sla-bot report` and the /reports page both call, so
the two can only differ in how they print the same numbers."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from sla_bot.reports import aggregate, costs, facts
from sla_bot.reports.facts import Filters

UTC_ZONE = ZoneInfo("UTC")


def report(engine: Engine, f: Filters, *, cost_file: costs.Costs | None = None) -> aggregate.Report:
    with engine.connect() as conn:
        gathered = facts.gather(conn, f)
        premature = facts.premature(conn, f)
    return aggregate.build(gathered, f, costs=cost_file, premature=premature)


def leads(engine: Engine, f: Filters, group: str | None, metric: str) -> list[Any]:
    """The leads behind one number of a report (its drill-down), oldest clock start first:
    every column of `lead_outcomes`. `group`: a group's key (None: all leads)."""
    m = aggregate.BY_KEY.get(metric)
    if m is None:
        raise ValueError(f"unknown metric {metric!r}: one of {', '.join(aggregate.BY_KEY)}")
    with engine.connect() as conn:
        return facts.behind(conn, f, group, m.behind)


def default_zone(rules: Any) -> ZoneInfo:
    """The time zone of the rules' default calendar (weeks start Monday 00:00 there), else UTC."""
    try:
        ruleset = rules.current().ruleset
    except Exception:  # no rules loaded: a report still works, in UTC
        return UTC_ZONE
    name = ruleset.settings.default_calendar
    calendar = ruleset.calendars.get(name or "")
    return ZoneInfo(calendar.timezone) if calendar is not None else UTC_ZONE


def cost_file(explicit: Path | None, rules_dir: Path) -> costs.Costs | None:
    """The campaign costs in use (RulesInvalid with file:line:col errors if the file is bad)."""
    path = costs.find(explicit, rules_dir)
    return costs.load(path) if path is not None else None


def filters_from(
    params: Mapping[str, str | None], zone: ZoneInfo, *, portal: int | None = None
) -> Filters:
    """Filters from text (CLI options or query parameters); ValueError names what is wrong."""
    tz = zone
    if params.get("tz"):
        try:
            tz = ZoneInfo(str(params["tz"]))
        except Exception:
            raise ValueError(f"unknown time zone {params['tz']!r}") from None
    since = facts.parse_when(str(params["since"]), tz) if params.get("since") else None
    until = facts.parse_when(str(params["until"]), tz) if params.get("until") else None
    if since and until and until <= since:
        raise ValueError("--until must be after --since")
    if portal is None and params.get("portal"):
        text = str(params["portal"])
        if not text.isdigit():
            raise ValueError(f"portal {text!r}: expected a portal id")
        portal = int(text)
    return Filters(
        by=str(params.get("by") or "rep"),
        since=since,
        until=until,
        portal=portal,
        tz=tz,
        team=str(params["team"]) if params.get("team") else None,
    )
