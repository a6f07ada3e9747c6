"""`sla-bot rules backtest`: what would these rules have done over a recorded period?

Reads the database read-only (DATABASE_URL), replays the recorded history under the rules in
`--rules` (and `--against`), prints a report. No HubSpot or Slack call is made, except the
HubSpot search `--from-hubspot` asks for (within HUBSPOT_RATE_LIMIT).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sla_bot.clock import SystemClock
from sla_bot.durations import DurationError, parse_duration

if TYPE_CHECKING:  # the engine (and prometheus_client) load only when the command runs
    from sla_bot.backtest.compare import Run
    from sla_bot.backtest.history import History
    from sla_bot.backtest.load import Period

SLACK_TICKS = 5  # a lead due at T is decided at a recorded sweep pass within 5 ticks, else at T


def register(rules_sub: Any) -> None:
    p = rules_sub.add_parser(
        "backtest",
        help="replay a recorded period under candidate rules: nudges, escalations, breaches",
        description="Replay the recorded history (webhook events, contact reads, Slack buttons) "
        "under candidate rules with the engine's own code. Reads DATABASE_URL read-only; "
        "writes nothing and calls neither HubSpot nor Slack (except --from-hubspot).",
    )
    p.add_argument("--rules", type=Path, help="candidate rules (default: $SLA_BOT_RULES_DIR)")
    p.add_argument("--against", type=Path, help="baseline rules, shown side by side")
    p.add_argument("--since", default="30d", help="the period: the last N (e.g. 30d, 2w)")
    p.add_argument("--from", dest="start", help="start of the period (ISO time with zone)")
    p.add_argument("--to", dest="end", help="end of the period (ISO time; default: now)")
    p.add_argument("--portal", type=int, help="only this HubSpot portal")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument(
        "--from-hubspot",
        action="store_true",
        help="add leads created in the period that sla-bot has no full record of, read from "
        "HubSpot's search API (needs HUBSPOT_ACCESS_TOKEN)",
    )
    p.set_defaults(func=cmd_backtest)


class Progress:
    """A one-line progress bar on stderr, only when it is a terminal."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        stream = stream or sys.stderr
        self.label, self.total, self.stream = label, max(total, 1), stream
        self.on = stream.isatty() and total > 0
        self.started = time.monotonic()

    def __call__(self, done: int) -> None:
        if not self.on:
            return
        frac = min(done / self.total, 1.0)
        bar = "#" * int(frac * 30)
        rate = done / max(time.monotonic() - self.started, 1e-6)
        self.stream.write(f"\r{self.label} [{bar:<30}] {frac:4.0%} {rate:,.0f} inputs/s")
        if done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


def _period(args: argparse.Namespace, now: datetime) -> Period:
    from sla_bot.backtest.load import Period
    from sla_bot.rules.simulate import InputError, parse_time

    try:
        end = parse_time(args.end, "--to") if args.end else now
        if args.start:
            start = parse_time(args.start, "--from")
        else:
            since = parse_duration(args.since)
            if since.business:
                raise InputError(f"--since: '{args.since}' must be wall-clock time, e.g. 30d")
            start = end - since.as_timedelta()
    except (InputError, DurationError) as exc:
        raise SystemExit(f"sla-bot rules backtest: {exc}") from None
    if start >= end:
        raise SystemExit("sla-bot rules backtest: --from must be before --to")
    return Period(start, end, args.portal)


def _rules(directory: Path) -> Any:
    from sla_bot.rules.holder import RulesHolder

    holder = RulesHolder(directory)
    holder.reload_if_changed()
    if not holder.loaded:
        print(f"sla-bot rules backtest: rules in {directory} are invalid:", file=sys.stderr)
        for err in holder.errors:
            print(f"  {err}", file=sys.stderr)
        raise SystemExit(1)
    return holder.current()


def cmd_backtest(args: argparse.Namespace) -> int:
    from sla_bot.backtest.compare import Run, fate_changes
    from sla_bot.backtest.load import load_history, open_readonly
    from sla_bot.backtest.render import as_csv, as_json, as_table, result
    from sla_bot.backtest.replay import replay
    from sla_bot.backtest.report import Tally
    from sla_bot.cli import settings_from_env
    from sla_bot.db import migrate

    settings = settings_from_env()
    period = _period(args, SystemClock().now())
    candidate = _rules(args.rules or settings.rules_dir)
    baseline = _rules(args.against) if args.against else None
    engine = open_readonly(settings.database_url)
    try:
        if not migrate.is_current(engine):
            print(
                "sla-bot rules backtest: the database schema is not current "
                "(run `sla-bot db upgrade`)",
                file=sys.stderr,
            )
            return 2
        history = load_history(engine, period)
    finally:
        engine.dispose()
    hubspot_leads = 0
    if args.from_hubspot:
        from sla_bot.backtest.from_hubspot import add_from_hubspot

        hubspot_leads = add_from_hubspot(history, settings, candidate.ruleset, period)
    slack = timedelta(seconds=SLACK_TICKS * settings.worker_interval_seconds)
    runs = []
    for name, loaded in (("candidate", candidate), ("baseline", baseline)):
        if loaded is None:
            continue
        tally = Tally(loaded.ruleset, period.start, period.end)
        bar = Progress(f"replaying ({name})", len(history.inputs))
        out = replay(history, loaded, until=period.end, slack=slack, observer=tally, progress=bar)
        runs.append(Run(loaded, out, tally.report))
    data = result(
        period={
            "from": period.start.isoformat(),
            "to": period.end.isoformat(),
            "portal": period.portal_id,
        },
        history=_history_facts(history, runs[0], hubspot_leads),
        candidate=(_name(args.rules or settings.rules_dir, candidate), runs[0].report),
        baseline=(_name(args.against, baseline), runs[1].report) if baseline else None,
        changes=fate_changes(runs[1], runs[0], period.end) if baseline else (),
    )
    render = {"table": as_table, "csv": as_csv, "json": as_json}[args.format]
    sys.stdout.write(render(data))
    return 0


def _name(directory: Path | None, loaded: Any) -> str:
    return f"{directory} (version {loaded.version})"


def _history_facts(history: History, run: Run, hubspot_leads: int) -> dict[str, Any]:
    return {
        "leads": len(history.leads()),
        "inputs": len(history.inputs),
        "from_hubspot": hubspot_leads,
        "not_replayed": history.not_replayed,
        "unknown": history.unknown,
        "buttons_refused": run.outcome.refused,
        "decision_errors": run.outcome.errors,
    }
