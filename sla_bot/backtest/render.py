"""A backtest's result as data (JSON), a long CSV, or tables for people.

One structure (`result`) is built once; the three formats print it. With a baseline
(`--against`), every number is a pair: baseline, candidate and the difference.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sla_bot.backtest.compare import FateChange
from sla_bot.backtest.report import DIMENSIONS, METRICS, Report


def result(
    *,
    period: dict[str, Any],
    history: dict[str, Any],
    candidate: tuple[str, Report],
    baseline: tuple[str, Report] | None = None,
    changes: Iterable[FateChange] = (),
) -> dict[str, Any]:
    """The backtest's answer as JSON-able data."""
    name, report = candidate
    base = baseline[1] if baseline else None
    out: dict[str, Any] = {
        "period": period,
        "rules": name,
        "history": history,
        "totals": _metrics(report.totals, base.totals if base else None),
        "by": {},
        "noise": _noise(report, base),
    }
    if baseline is not None:
        out["against"] = baseline[0]
        out["fate_changes"] = [c.to_dict() for c in changes]
    for dim in DIMENSIONS:
        keys = sorted(set(report.by[dim]) | (set(base.by[dim]) if base else set()))
        out["by"][dim] = [
            {
                "key": k,
                **_metrics(report.by[dim].get(k, {}), base.by[dim].get(k, {}) if base else None),
            }
            for k in keys
        ]
    return out


def _metrics(cand: Any, base: Any | None) -> dict[str, Any]:
    if base is None:
        return {m: int(cand.get(m, 0)) for m in METRICS}
    return {
        m: {
            "baseline": int(base.get(m, 0)),
            "candidate": int(cand.get(m, 0)),
            "difference": int(cand.get(m, 0)) - int(base.get(m, 0)),
        }
        for m in METRICS
    }


def _noise(report: Report, base: Report | None) -> list[dict[str, Any]]:
    rows = {r["recipient"]: r for r in report.noise()}
    if base is None:
        return list(rows.values())
    before = {r["recipient"]: r for r in base.noise()}
    out = []
    for who in sorted(set(rows) | set(before)):
        c, b = rows.get(who, {}), before.get(who, {})
        item: dict[str, Any] = {"recipient": who, "role": c.get("role") or b.get("role")}
        for m in ("messages", "days", "per_day", "max_per_day"):
            item[m] = {"baseline": b.get(m, 0), "candidate": c.get(m, 0)}
        out.append(item)
    out.sort(key=lambda r: (-r["max_per_day"]["candidate"], r["recipient"]))
    return out


# --- CSV -----------------------------------------------------------------------------------------


def as_csv(data: dict[str, Any]) -> str:
    """Long format: section, key, metric, value (or baseline, candidate, difference)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    pair = "against" in data
    w.writerow(
        [
            "section",
            "key",
            "metric",
            *(["baseline", "candidate", "difference"] if pair else ["value"]),
        ]
    )

    def row(section: str, key: str, metric: str, value: Any) -> None:
        if isinstance(value, dict):
            b, c = value["baseline"], value["candidate"]
            w.writerow([section, key, metric, b, c, value.get("difference", _diff(b, c))])
        else:
            w.writerow([section, key, metric, value])

    for metric, value in data["totals"].items():
        row("total", "", metric, value)
    for dim, items in data["by"].items():
        for item in items:
            for metric in METRICS:
                row(dim, item["key"], metric, item[metric])
    for item in data["noise"]:
        for metric in ("messages", "days", "per_day", "max_per_day"):
            row("recipient", item["recipient"], metric, item[metric])
    for change in data.get("fate_changes", []):
        w.writerow(
            ["fate", f"{change['portal_id']}/{change['contact_id']}", "change"]
            + [change["baseline"], change["candidate"], change["why"]]
        )
    return buf.getvalue()


def _diff(b: Any, c: Any) -> Any:
    return round(c - b, 2) if isinstance(b, int | float) and isinstance(c, int | float) else ""


# --- tables --------------------------------------------------------------------------------------

HEADERS = {
    "leads": "LEADS",
    "breaches": "BREACHES",
    "nudges": "NUDGES",
    "escalations": "ESCALATIONS",
    "reassignments": "REASSIGNED",
    "recycles": "RECYCLED",
    "dq_flags": "DQ FLAGS",
    "messages": "MESSAGES",
}


def _cell(value: Any) -> str:
    if not isinstance(value, dict):
        return str(value)
    b, c = value["baseline"], value["candidate"]
    if b == c:
        return str(c)
    d = _diff(b, c)
    return f"{b}->{c} ({'+' if d > 0 else ''}{d})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*header).rstrip()] + [fmt.format(*r).rstrip() for r in rows]


def as_table(data: dict[str, Any]) -> str:
    p, h = data["period"], data["history"]
    lines = [
        f"Backtest {p['from']} .. {p['to']}"
        + (f" (portal {p['portal']})" if p.get("portal") else ""),
        f"Rules:   {data['rules']}",
    ]
    if "against" in data:
        lines.append(f"Against: {data['against']}   (cells: baseline->candidate (difference))")
    lines.append(
        f"History: {h['leads']} leads replayed, {h['inputs']} recorded inputs"
        + (f", {h['from_hubspot']} leads from HubSpot" if h.get("from_hubspot") else "")
    )
    for reason, n in sorted(h.get("not_replayed", {}).items()):
        lines.append(f"  not replayed: {n} ({reason})")
    for note in h.get("unknown", []):
        lines.append(f"  cannot know: {note}")
    for why, n in sorted(h.get("buttons_refused", {}).items()):
        lines.append(f"  {n} recorded actions could not apply ({why})")
    lines += ["", "TOTAL"]
    lines += _table([HEADERS[m] for m in METRICS], [[_cell(data["totals"][m]) for m in METRICS]])
    for dim in ("policy", "team", "rep", "day"):
        items = data["by"][dim]
        if not items:
            continue
        lines += ["", f"BY {dim.upper()}"]
        lines += _table(
            [dim.upper(), *(HEADERS[m] for m in METRICS)],
            [[i["key"], *(_cell(i[m]) for m in METRICS)] for i in items],
        )
    if data["noise"]:
        lines += ["", "NOISE FORECAST: messages per recipient per day (delivery day, UTC)"]
        lines += _table(
            ["RECIPIENT", "MESSAGES", "DAYS", "PER DAY", "MAX/DAY", "BUSIEST DAY"],
            [
                [
                    n["recipient"],
                    _cell(n["messages"]),
                    _cell(n["days"]),
                    _cell(n["per_day"]),
                    _cell(n["max_per_day"]),
                    n.get("busiest_day", ""),
                ]
                for n in data["noise"]
            ],
        )
    if "fate_changes" in data:
        changes = data["fate_changes"]
        lines += ["", f"LEADS WHOSE FATE CHANGES ({len(changes)})"]
        for c in changes:
            lines += [
                f"contact {c['contact_id']} (portal {c['portal_id']})",
                f"  baseline:  {c['baseline']}",
                f"  candidate: {c['candidate']}",
                f"  why:       {c['why']}",
            ]
    return "\n".join(lines) + "\n"


def as_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, default=_default) + "\n"


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
