"""`sla-bot leads list`: the queue of open leads, most urgent first (reads the database only)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from typing import Any

FORMATS = ("table", "csv", "json")


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("leads", help="the queue of open leads")
    sub = group.add_subparsers(dest="leads_command", required=True, metavar="LEADS_COMMAND")
    p = sub.add_parser(
        "list",
        help="open leads, most urgent first, with the next step and when",
        description="Open leads, most urgent first: breached leads (longest overdue first), "
        "then by deadline; held leads last. Reads the database only.",
    )
    p.add_argument("--breached", action="store_true", help="only leads past their deadline")
    p.add_argument("--due-within", help="deadline within this time (e.g. 1h), overdue included")
    p.add_argument("--owner", help="owner id, or part of the rep's name")
    p.add_argument("--team", help="team name")
    p.add_argument("--policy", help="policy name")
    p.add_argument("--status", help="awaiting_first_touch, breached, in_cadence, paused, ...")
    p.add_argument("--portal", type=int, help="HubSpot portal id")
    p.add_argument("--limit", type=int, default=200, help="at most this many (default 200)")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.set_defaults(func=cmd_list)


def cmd_list(args: argparse.Namespace) -> int:
    from sla_bot.backtest.load import open_readonly
    from sla_bot.cli import rules_holder, settings_from_env
    from sla_bot.clock import SystemClock
    from sla_bot.durations import DurationError, parse_duration
    from sla_bot.leadqueue.query import QueueFilter, open_leads

    due = None
    if args.due_within:
        try:
            d = parse_duration(args.due_within)
        except DurationError as exc:
            print(f"sla-bot leads list: --due-within: {exc}", file=sys.stderr)
            return 2
        if d.business:
            print(
                "sla-bot leads list: --due-within takes wall-clock time, e.g. 1h", file=sys.stderr
            )
            return 2
        due = d.as_timedelta()
    settings = settings_from_env()
    loaded = rules_holder(settings).current()
    filt = QueueFilter(
        breached=args.breached,
        due_within=due,
        owner=args.owner,
        team=args.team,
        policy=args.policy,
        status=args.status,
        portal=args.portal,
        limit=args.limit,
    )
    now = SystemClock().now()
    engine = open_readonly(settings.database_url)
    try:
        with engine.connect() as conn:
            items = open_leads(conn, loaded, now, filt)
    finally:
        engine.dispose()
    sys.stdout.write(render(items, now, args.format))
    return 0


def render(items: list[Any], now: Any, fmt: str) -> str:
    from sla_bot.leadqueue.html import when

    dicts = [i.to_dict() for i in items]
    if fmt == "json":
        return json.dumps(dicts, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        names = list(dicts[0]) if dicts else ["lead_id"]
        w = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
        w.writeheader()
        w.writerows(dicts)
        return buf.getvalue()
    header = ["DEADLINE", "STATUS", "CONTACT", "NAME", "OWNER", "TEAM", "POLICY", "NEXT STEP"]
    rows = [
        [
            when(i.deadline, now),
            i.status,
            str(i.contact_id),
            i.name[:30],
            (i.owner_name or i.owner_id or "-")[:20],
            i.team or "-",
            i.policy,
            f"{i.next_step} {when(i.next_at, now)}" if i.next_step else "-",
        ]
        for i in items
    ]
    if not rows:
        return "No open leads match.\n"
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=False)]
    fmt_line = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt_line.format(*r).rstrip() for r in [header, *rows]) + "\n"
