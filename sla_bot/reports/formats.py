"""A report as a terminal table, CSV or JSON: the same values, only spelled differently.

JSON carries numbers (seconds as integers, percentages and money as decimals), CSV the same
numbers as text, the table the same values made readable (durations as "1h 2m 5s", "66.7%").
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from sla_bot.reports.aggregate import Group, Metric, Report

SECTIONS_ORDER = ("Speed to lead", "SLA compliance", "Follow-through", "Funnel", "Costs")


def duration(seconds: int) -> str:
    """Exact and readable: 45s, 12m, 12m 5s, 1h 2m, 2d 15h 8m."""
    if seconds < 0:
        return "-" + duration(-seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n}{unit}")
    return " ".join(parts) or "0s"


def shown(metric: Metric, value: Any) -> str:
    """A value as the table shows it."""
    if value is None:
        return "-"
    if metric.kind == "seconds":
        return duration(int(value))
    if metric.kind == "pct":
        return f"{value}%"
    return str(value)


def plain(value: Any) -> Any:
    """A value as JSON carries it."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def filters_line(report: Report) -> str:
    f = report.filters
    since = f.since.astimezone(f.tz).isoformat() if f.since else "the beginning"
    until = f.until.astimezone(f.tz).isoformat() if f.until else "now"
    portal = f"portal {f.portal}" if f.portal is not None else "all portals"
    if f.team is not None:
        portal += f", team {f.team}"
    return (
        f"Leads whose clock started from {since} until {until}, {portal}, by {f.by} "
        f"(weeks start Monday 00:00 {f.tz.key})"
    )


def as_json(report: Report) -> str:
    f = report.filters

    def group(g: Group) -> dict[str, Any]:
        return {
            "key": g.key,
            "label": g.label,
            **{m.key: plain(g.values.get(m.key)) for m in report.metrics},
        }

    body = {
        "filters": {
            "by": f.by,
            "since": plain(f.since),
            "until": plain(f.until),
            "portal": f.portal,
            "team": f.team,
            "timezone": f.tz.key,
        },
        "metrics": [{"key": m.key, "label": m.label, "kind": m.kind} for m in report.metrics],
        "groups": [group(g) for g in report.groups],
        "total": group(report.total),
        "premature_disqualifications": [
            {k: plain(v) for k, v in p.items()} for p in report.premature
        ],
        "backfilled_leads": report.backfilled,
    }
    return json.dumps(body, indent=2)


def as_csv(report: Report) -> str:
    """One line per group and a last line `all`; the premature list is in table and JSON."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["key", report.filters.by, *(m.key for m in report.metrics)])
    for g in [*report.groups, report.total]:
        writer.writerow([g.key, g.label, *(_text(g.values.get(m.key)) for m in report.metrics)])
    return out.getvalue()


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def as_table(report: Report) -> str:
    lines = [filters_line(report), ""]
    for section in SECTIONS_ORDER:
        metrics = [m for m in report.metrics if section in m.sections]
        if not metrics:
            continue
        lines.append(section)
        rows = [
            [g.label, *(shown(m, g.values.get(m.key)) for m in metrics)]
            for g in [*report.groups, report.total]
        ]
        lines += _table([report.filters.by, *(m.label for m in metrics)], rows)
        lines.append("")
    lines.append("Premature disqualifications")
    if report.premature:
        tz = report.filters.tz
        rows = [
            [
                p["name"],
                p["rep"],
                p["at"].astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                f"{p['touches']} of {p['min_touches']}",
                f"{p['portal_id']}/{p['contact_id']}",
            ]
            for p in report.premature
        ]
        lines += _table(["lead", "rep", "when", "touches", "portal/contact"], rows)
    else:
        lines.append("none")
    if report.backfilled:
        lines += [
            "",
            f"{report.backfilled} lead(s) were recorded before sla-bot kept outcome facts: they "
            "count everywhere except business-time speed (not known for them).",
        ]
    if report.costs_note:
        lines += ["", f"Note: {report.costs_note}."]
    return "\n".join(lines).rstrip() + "\n"


FORMATS = {"table": as_table, "csv": as_csv, "json": as_json}
