"""`sla-bot rules check|simulate`: registered into the main argparse CLI by `register`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from sla_bot.rules.loader import load_directory
from sla_bot.rules.simulate import (
    InputError,
    as_json,
    as_text,
    lead_id,
    noise_note,
    parse_time,
    parse_touches,
    read_lead,
)
from sla_bot.rules.timeline import build_timeline

ENV_DIR = "SLA_BOT_RULES_DIR"


def default_dir() -> Path:
    return Path(os.environ.get(ENV_DIR) or "rules")


def register(subparsers: Any) -> Any:
    """Add `rules` with sub-commands `check` and `simulate`; each sets func(args) -> exit code.
    Returns the `rules` sub-command group, so the service can add its own (`backtest`)."""
    rules = subparsers.add_parser("rules", help="check and simulate rule files")
    sub = rules.add_subparsers(dest="rules_command", required=True, metavar="RULES_COMMAND")
    check = sub.add_parser(
        "check",
        help="validate a rules directory; errors as file:line:col: message",
        description=f"Validate rule files (default directory: ${ENV_DIR} or ./rules).",
    )
    check.add_argument("dir", nargs="?", type=Path, help="rules directory")
    check.set_defaults(func=cmd_check)
    sim = sub.add_parser(
        "simulate",
        help="show every deadline and notification for one lead",
        description="Print which policy a lead gets and what happens when, without side effects.",
    )
    sim.add_argument(
        "--lead",
        required=True,
        type=Path,
        help="JSON file of contact properties (or `sla-bot lead show --json` output: the lead "
        "with its history)",
    )
    sim.add_argument("--touches", default="", help="T1,T2:connect,... ISO times of touches")
    sim.add_argument("--at", help="show the state at this ISO time (default: end of timeline)")
    sim.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sim.add_argument("--dir", type=Path, help="rules directory")
    sim.add_argument("--portal", type=int, help="HubSpot portal id (default: from the lead)")
    sim.set_defaults(func=cmd_simulate)
    return sub


def cmd_check(args: argparse.Namespace) -> int:
    directory = args.dir or default_dir()
    result = load_directory(directory)
    for error in result.errors:
        print(error)
    if result.errors or result.ruleset is None:
        n = len(result.errors)
        sys.stdout.flush()
        print(f"{n} error{'s' * (n != 1)} in {directory}", file=sys.stderr)
        return 1
    print(f"OK {directory}: {result.ruleset.summary()} (version {result.version})")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    directory = args.dir or default_dir()
    try:
        lead = read_lead(args.lead)
        touches = lead.touches + parse_touches(args.touches)
        now = parse_time(args.at, "--at") if args.at else None
    except InputError as exc:
        print(f"sla-bot rules simulate: {exc}", file=sys.stderr)
        return 2
    result = load_directory(directory)
    if result.ruleset is None:
        for error in result.errors:
            print(error, file=sys.stderr)
        return 1
    portal_id = args.portal if args.portal is not None else lead.portal_id
    policy = lead.policy if lead.policy in result.ruleset.policies else None
    timeline = build_timeline(
        result.ruleset,
        portal_id,
        lead.properties,
        touches=touches,
        now=now,
        policy=policy,
        history=lead.history,
    )
    if args.json:
        print(as_json(timeline), end="")
        return 0
    batching = noise_note(result.ruleset, timeline)
    print(as_text(timeline, lead_id(lead.properties), batching=batching), end="")
    return 0
