"""Benchmark the weekly digests over a year of history: 100k leads by default.

    python -m bench.digests [--leads 100000] [--db sqlite|postgresql|both] [--pg URL]

Seeds the leads of bench/report.py (20 reps in 4 teams, a year before 2026-11-20), then times:
- a digest tick when nothing is due (what the worker pays every 30 s);
- the tick that decides 4 team scorecards and the marketing digest (their reports, queried
  and enqueued), and a tick right after it (all already decided);
- rendering one scorecard's Slack blocks and its chart PNG (matplotlib, Agg).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from bench.report import seed
from bench.sweep import pg_engine
from integrations.slack.digest_messages import render
from sla_bot.config import Settings, load_settings
from sla_bot.db import migrate
from sla_bot.db.engine import make_engine
from sla_bot.db.schema import outbox
from sla_bot.digests.chart import scorecard_png
from sla_bot.digests.plan import plan_due
from sla_bot.rules.loader import load_rules
from sla_bot.rules.ruleset import RuleSet

TEAMS = "\n".join(
    f"""  team{t}:
    calendar: utc
    managers: [{{name: Manager {t}, email: manager{t}@example.com}}]
    members:
"""
    + "\n".join(f'      - {{owner_id: "{1000 + r}"}}' for r in range(20) if r % 4 == t)
    for t in range(4)
)
RULES = f"""
settings: {{default_calendar: utc}}
calendars:
  utc: {{timezone: UTC, hours: {{mon-fri: "08:00-18:00"}}}}
teams:
{TEAMS}
policies:
  bench: {{team: team0, first_touch: {{within: 5m}}}}
routing:
  all: {{fallback: bench}}
digests:
  scorecards: {{kind: scorecard, every: monday 08:30}}
  marketing: {{kind: marketing, channel: "#marketing", every: monday 08:30}}
"""
DUE = datetime(2026, 11, 16, 8, 30, tzinfo=UTC)


def timed(func: Callable[[], object], runs: int = 3) -> float:
    took = []
    for _ in range(runs):
        t = time.perf_counter()
        func()
        took.append(time.perf_counter() - t)
    return statistics.median(took)


def bench(db: str, engine: Engine, rules: RuleSet, settings: Settings, n: int) -> None:
    migrate.upgrade(engine)
    seed(engine, n)
    idle = timed(lambda: plan_due(engine, rules, settings, now=DUE.replace(hour=7)))
    t = time.perf_counter()
    planned = plan_due(engine, rules, settings, now=DUE)
    decide = time.perf_counter() - t
    again = timed(lambda: plan_due(engine, rules, settings, now=DUE))
    with engine.connect() as conn:
        payload = json.loads(
            conn.execute(select(outbox.c.payload).where(outbox.c.kind == "scorecard")).first()[0]
        )
    blocks = timed(lambda: render(payload), runs=5)
    png = timed(lambda: scorecard_png(payload), runs=5)
    print(
        f"{db}: {n} leads; tick with nothing due {idle * 1000:.1f} ms; "
        f"deciding {len(planned)} digests {decide:.2f} s; the tick after "
        f"{again * 1000:.1f} ms; blocks {blocks * 1000:.2f} ms; chart PNG "
        f"{png * 1000:.0f} ms (load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg", default=os.environ.get("SLA_BOT_TEST_DATABASE_URL"))
    args = parser.parse_args()
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    with tempfile.TemporaryDirectory() as tmp:
        rules_dir = Path(tmp) / "rules"
        rules_dir.mkdir()
        (rules_dir / "rules.yaml").write_text(RULES)
        rules = load_rules(rules_dir)
        for db in dbs:
            schema = None
            if db == "sqlite":
                engine = make_engine(f"sqlite:///{tmp}/digests-bench.db")
            elif args.pg:
                engine, schema = pg_engine(args.pg)
            else:
                print("postgresql: set --pg or SLA_BOT_TEST_DATABASE_URL")
                continue
            settings = load_settings(
                {
                    "DATABASE_URL": engine.url.render_as_string(hide_password=False),
                    "HUBSPOT_CLIENT_SECRET": "bench-secret",
                    "SLA_BOT_RULES_DIR": str(rules_dir),
                }
            )
            try:
                bench(db, engine, rules, settings, args.leads)
            finally:
                if schema:
                    with engine.begin() as conn:
                        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                engine.dispose()


if __name__ == "__main__":
    main()
