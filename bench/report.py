"""Benchmark `sla-bot report` over a year of history: 100k leads by default.

    python -m bench.report [--leads 100000] [--db sqlite|postgresql|both] [--pg URL]

Seeds `--leads` leads with outcome facts spread evenly over the year before 2026-11-20 (20 reps
in 4 teams, 3 policies, 6 sources, 30 campaigns; 85% touched, 2% disqualified prematurely),
three outcome events each, then times:
- `sla-bot report --by rep` as a command (a new process: start-up, rules, query, table), the
  figure the target (< 2 s) is about; median of 3 runs;
- the report itself in-process for every grouping, as JSON (query + numbers + formatting).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, text
from sqlalchemy.engine import Engine

from bench.sweep import pg_engine, wall_rules
from sla_bot.db import migrate
from sla_bot.db.engine import make_engine
from sla_bot.db.schema import lead_outcome_events, lead_outcomes, leads
from sla_bot.engine.outcomes import WAITS, stage_waits
from sla_bot.reports import formats, run
from sla_bot.reports.facts import GROUPINGS, Filters

END = datetime(2026, 11, 20, tzinfo=UTC)
SOURCES = (
    "ORGANIC_SEARCH",
    "PAID_SEARCH",
    "EMAIL_MARKETING",
    "SOCIAL_MEDIA",
    "REFERRALS",
    "OFFLINE",
)
POLICIES = ("inbound_demo", "webinar", "partner")
TARGET_S = 2.0


def seed(engine: Engine, n: int, chunk: int = 10_000) -> None:
    """`n` leads with facts over the year before END, deterministically varied."""
    span = timedelta(days=365).total_seconds()
    for begin in range(0, n, chunk):
        lead_rows, fact_rows, event_rows = [], [], []
        for i in range(begin, min(n, begin + chunk)):
            lead_id = i + 1
            started = END - timedelta(seconds=span * (n - i) / n)
            owner = str(1000 + i % 20)
            touched = i % 20 < 17
            speed = 30 + (i * 7919) % 5400
            first = started + timedelta(seconds=speed) if touched else None
            met = touched and speed <= 300
            connected = first + timedelta(hours=2) if touched and i % 3 == 0 else None
            premature = i % 50 == 0
            outcome = ("disqualified", "recycled", "converted", "open")[i % 4]
            qualified = started + timedelta(days=3) if outcome == "converted" else None
            opportunity = qualified + timedelta(days=7) if qualified and i % 8 == 2 else None
            waits = stage_waits([started, first, connected, qualified, opportunity, None])
            lead_rows.append(
                {
                    "id": lead_id,
                    "portal_id": 62515,
                    "object_id": lead_id,
                    "status": "open" if outcome == "open" else "closed",
                    "policy": POLICIES[i % 3],
                    "updated_at": END,
                }
            )
            fact_rows.append(
                {
                    "lead_id": lead_id,
                    "portal_id": 62515,
                    "object_id": lead_id,
                    "name": f"Lead {lead_id}",
                    "policy": POLICIES[i % 3],
                    "team": f"team{i % 4}",
                    "owner_id": owner,
                    "owner_name": f"Rep {owner}",
                    "source": SOURCES[i % len(SOURCES)],
                    "campaign": f"campaign-{i % 30}" if i % 7 else None,
                    "started_at": started,
                    "due_at": started + timedelta(minutes=5),
                    "first_touch_at": first,
                    "first_touch_owner_id": owner if touched else None,
                    "business_seconds": speed if touched else None,
                    "wall_seconds": speed + (i % 3) * 3600 if touched else None,
                    "result": "met" if met else "breached",
                    "touches": (i % 9) if touched else 0,
                    "connected_at": connected,
                    "min_touches": 8,
                    "outcome": "disqualified" if premature else outcome,
                    "outcome_at": None if outcome == "open" else started + timedelta(days=5),
                    "touches_before_outcome": None if outcome == "open" else i % 9,
                    "premature_dq": 1 if premature else 0,
                    "qualified_at": qualified,
                    "opportunity_at": opportunity,
                    "customer_at": None,
                    **dict(zip(WAITS, waits, strict=True)),
                    "updated_at": END,
                }
            )
            for k in range(3):
                at = started + timedelta(hours=k)
                event_rows.append(
                    {
                        "lead_id": lead_id,
                        "portal_id": 62515,
                        "object_id": lead_id,
                        "at": at,
                        "kind": "premature_dq" if premature and k == 2 else "touch",
                        "key": f"e{k}",
                        "owner_id": owner,
                        "detail": "2/8" if premature and k == 2 else None,
                    }
                )
        with engine.begin() as conn:
            conn.execute(insert(leads), lead_rows)
            conn.execute(insert(lead_outcomes), fact_rows)
            conn.execute(insert(lead_outcome_events), event_rows)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(url: str, rules: Path, by: str) -> tuple[float, float]:
    """(wall, CPU) seconds of `sla-bot report --by BY` in a new process, median of 3. CPU time
    is what the figure would be on an idle machine (this one is shared); on PostgreSQL it
    leaves out the server's share."""
    env = {**os.environ, "DATABASE_URL": url, "SLA_BOT_RULES_DIR": str(rules)}
    took, cpu = [], []
    for _ in range(3):
        c = _children_cpu()
        t = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "sla_bot", "report", "--by", by],
            env=env,
            capture_output=True,
            check=False,
        )
        took.append(time.perf_counter() - t)
        cpu.append(_children_cpu() - c)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.decode()[-2000:])
    return statistics.median(took), statistics.median(cpu)


def time_in_process(engine: Engine, by: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one report as JSON, median of 3."""
    took, cpu = [], []
    for _ in range(3):
        c, t = time.process_time(), time.perf_counter()
        formats.as_json(run.report(engine, Filters(by=by)))
        took.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(took), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg", default=os.environ.get("SLA_BOT_TEST_DATABASE_URL"))
    args = parser.parse_args()
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules"
        wall_rules(rules)
        for db in dbs:
            schema = None
            if db == "sqlite":
                url = f"sqlite:///{tmp}/report-bench.db"
                engine = make_engine(url)
            elif args.pg:
                engine, schema = pg_engine(args.pg)
                url = engine.url.render_as_string(hide_password=False)
            else:
                print("postgresql: set --pg or SLA_BOT_TEST_DATABASE_URL")
                continue
            try:
                migrate.upgrade(engine)
                t = time.perf_counter()
                seed(engine, args.leads)
                print(f"{db}: seeded {args.leads} leads in {time.perf_counter() - t:.1f}s")
                wall, cpu = time_command(url, rules, "rep")
                print(
                    f"{db}: `sla-bot report --by rep` (a new process): {wall:.2f} s wall, "
                    f"{cpu:.2f} s CPU (median of 3; target < {TARGET_S:.0f} s; load average "
                    f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
                )
                for by in GROUPINGS:
                    wall, cpu = time_in_process(engine, by)
                    print(
                        f"{db}:   report --by {by:<8} in-process {wall:.2f} s wall, {cpu:.2f} s CPU"
                    )
            finally:
                if schema:
                    with engine.begin() as conn:
                        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                engine.dispose()


if __name__ == "__main__":
    main()
