"""`sla-bot report`: scorecards from the outcome facts; `report leads`: the leads behind a number;
`report link`: a signed, expiring URL of the /reports page."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from sla_bot.durations import DurationError, parse_duration
from sla_bot.reports import formats, links, run
from sla_bot.reports.facts import GROUPINGS
from sla_bot.rules.errors import RulesInvalid

LEAD_FIELDS = (
    "portal_id",
    "object_id",
    "name",
    "owner_name",
    "policy",
    "started_at",
    "first_touch_at",
    "business_seconds",
    "wall_seconds",
    "result",
    "touches",
    "outcome",
)


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--by", choices=GROUPINGS, default="rep", help="group by (default: rep)")
    parser.add_argument("--since", help="first day (YYYY-MM-DD, or an ISO time) of clock starts")
    parser.add_argument("--until", help="day after the last (exclusive)")
    parser.add_argument(
        "--portal", type=int, default=None, help="one HubSpot portal (default: all)"
    )
    parser.add_argument("--team", default=None, help="one team's leads (default: all)")
    parser.add_argument(
        "--tz", default=None, help="time zone of dates and weeks (default: the rules' calendar)"
    )


def register(subparsers: Any) -> None:
    report = subparsers.add_parser(
        "report",
        help="speed to lead, SLA compliance, follow-through and funnel, grouped",
        description="Scorecards from the outcome facts the engine records. A report covers the "
        "leads whose first-touch clock started in [--since, --until).",
    )
    _filters(report)
    report.add_argument("--format", choices=tuple(formats.FORMATS), default="table")
    report.add_argument(
        "--costs", type=Path, default=None, help="campaign costs CSV (default: beside the rules)"
    )
    report.set_defaults(func=cmd_report)
    sub = report.add_subparsers(dest="report_command", metavar="REPORT_COMMAND")
    leads = sub.add_parser("leads", help="the leads behind one number (a drill-down)")
    _filters(leads)
    leads.add_argument("--metric", required=True, help="e.g. breached, premature_dq, touched")
    leads.add_argument("--group", default=None, help="the group's key (e.g. an owner id)")
    leads.add_argument("--format", choices=("table", "csv", "json"), default="table")
    leads.set_defaults(func=cmd_leads)
    link = sub.add_parser("link", help="print a signed, expiring URL of the /reports page")
    _filters(link)
    link.add_argument("--expires", default="7d", help="how long the link works (default 7d)")
    link.add_argument("--base-url", default=None, help="the service's public URL")
    link.set_defaults(func=cmd_link)


def _services() -> Any:
    from sla_bot.cli import build_services, settings_from_env

    return build_services(settings_from_env())


def _params(args: argparse.Namespace) -> dict[str, str | None]:
    return {
        "by": args.by,
        "since": args.since,
        "until": args.until,
        "tz": args.tz,
        "team": args.team,
        "portal": None if args.portal is None else str(args.portal),
    }


def _fail(message: str) -> int:
    print(f"sla-bot: {message}", file=sys.stderr)
    return 2


def cmd_report(args: argparse.Namespace) -> int:
    services = _services()
    try:
        return _report(services, args)
    finally:
        services.engine.dispose()


def _report(services: Any, args: argparse.Namespace) -> int:
    settings = services.settings
    try:
        f = run.filters_from(_params(args), run.default_zone(services.rules))
        costs = run.cost_file(args.costs or settings.campaign_costs, settings.rules_dir)
    except ValueError as exc:
        return _fail(str(exc))
    except RulesInvalid as exc:
        return _fail("the campaign costs file is invalid:\n  " + "\n  ".join(map(str, exc.errors)))
    sys.stdout.write(formats.FORMATS[args.format](run.report(services.engine, f, cost_file=costs)))
    return 0


def cmd_leads(args: argparse.Namespace) -> int:
    services = _services()
    try:
        f = run.filters_from(_params(args), run.default_zone(services.rules))
        rows = run.leads(services.engine, f, args.group, args.metric)
    except ValueError as exc:
        return _fail(str(exc))
    finally:
        services.engine.dispose()
    records = [{k: formats.plain(getattr(r, k)) for k in LEAD_FIELDS} for r in rows]
    if args.format == "json":
        print(json.dumps(records, indent=2))
    elif args.format == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, LEAD_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        sys.stdout.write(out.getvalue())
    else:
        for r in records:
            print("  ".join("-" if r[k] is None else str(r[k]) for k in LEAD_FIELDS))
    return 0


def cmd_link(args: argparse.Namespace) -> int:
    from sla_bot.cli import settings_from_env
    from sla_bot.clock import SystemClock

    settings = settings_from_env()
    try:
        lifetime = parse_duration(args.expires).as_timedelta()
        url = links.signed_url(
            settings,
            now=SystemClock().now(),
            lifetime=lifetime,
            params=_params(args),
            portal=args.portal,
            base=args.base_url,
        )
    except (DurationError, ValueError) as exc:
        return _fail(str(exc))
    print(url)
    return 0
