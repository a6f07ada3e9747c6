"""Benchmark the scheduler pass: time of one pass with nothing due and with 1% due, decisions/s.

    python -m bench.sweep --sizes 10000,100000 [--db sqlite|postgresql|both] [--pg URL]

Leads are bulk-inserted (executemany) under a 24/7 wall-clock policy: every lead has a
first-touch warning and a breach. 1% have their warning due within the next 10 s (evenly
spread: a steady arrival rate), the rest an hour later. The bench ticks every `--interval`
seconds of simulated time; decisions/s = decided / time spent in passes; the lag of a row is
(tick - deadline) + that tick's pass time, i.e. deadline-to-committed-outbox-row.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import Engine

from sla_bot.db import migrate
from sla_bot.db.engine import make_engine
from sla_bot.db.schema import leads, outbox
from sla_bot.engine.sweep import sweep_once
from sla_bot.rules import LoadedRules, RulesHolder

RULES_YAML = """
settings: {default_calendar: always}
calendars:
  always: {timezone: UTC, hours: 24/7}
teams:
  bench:
    channel: "#bench"
    managers: [{name: Manager, email: manager@example.com}]
    members:
      - {name: Rep One, owner_id: "1", email: one@example.com}
      - {name: Rep Two, owner_id: "2", email: two@example.com}
policies:
  bench:
    team: bench
    first_touch: {within: 1h, warning: 50%}
    quiet_hours: {outside_calendar: false}
routing:
  all: {leads: [], fallback: bench}
"""


def wall_rules(directory: Path) -> LoadedRules:
    """A 24/7, wall-clock policy: deadlines that do not depend on what day the bench runs."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "rules.yaml").write_text(RULES_YAML)
    holder = RulesHolder(directory)
    holder.reload_if_changed()
    return holder.current()


def seed_leads(
    engine: Engine,
    loaded: LoadedRules,
    n: int,
    *,
    due: int,
    now: datetime,
    start_id: int = 1,
    chunk: int = 10_000,
    spread: float = 0.0,
) -> None:
    """Insert `n` open leads; the first `due` have their warning due at `now` (or spread evenly
    over `spread` seconds from `now`); the others are due an hour later."""
    snapshot = loaded.policy_snapshot("bench")
    snap, phash = json.dumps(snapshot, sort_keys=True), loaded.policy_hash("bench")
    for begin in range(0, n, chunk):
        rows = []
        for i in range(begin, min(n, begin + chunk)):
            is_due = i < due
            offset = timedelta(seconds=spread * i / due) if is_due else timedelta(minutes=60)
            created = now + offset - timedelta(minutes=30)
            props = {"createdate": created.isoformat(), "hubspot_owner_id": "1"}
            rows.append(
                {
                    "portal_id": 1,
                    "object_id": start_id + i,
                    "status": "open",
                    "policy": "bench",
                    "policy_hash": phash,
                    "policy_snapshot": snap,
                    "rules_version": loaded.version,
                    "owner_id": "1",
                    "created_at": created,
                    "clock_started_at": created,
                    "properties": json.dumps(props),
                    "next_due_at": created + timedelta(minutes=30),
                    "updated_at": now,
                }
            )
        with engine.begin() as conn:
            conn.execute(insert(leads), rows)


def pg_engine(base: str) -> tuple[Engine, str]:
    from tests.conftest import pg_schema_url

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return make_engine(pg_schema_url(base, schema)), schema


SPREAD = 10.0  # seconds over which the 1% fall due: a steady arrival rate, ticked


def run_one(engine: Engine, loaded: LoadedRules, size: int, interval: float) -> dict[str, float]:
    migrate.upgrade(engine)
    now = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    due = size // 100
    t0 = time.perf_counter()
    seed_leads(engine, loaded, size, due=due, now=now, spread=SPREAD)
    load_s = time.perf_counter() - t0
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE leads"))
    idle = []
    for _ in range(20):  # nothing due yet: one second before the first deadline
        t = time.perf_counter()
        sweep_once(engine, loaded, now=now - timedelta(seconds=1))
        idle.append((time.perf_counter() - t) * 1000)
    # Tick every `interval` seconds of simulated time; a row's lag is how long after its
    # deadline the tick came, plus how long that tick's pass took to commit it.
    busy_s, decided, lags = 0.0, 0, []
    tick = now
    while tick <= now + timedelta(seconds=SPREAD + interval):
        tick += timedelta(seconds=interval)
        t = time.perf_counter()
        while True:
            got = sweep_once(engine, loaded, now=tick, limit=500)
            decided += got.leads
            if got.leads < 500:
                break
        took = time.perf_counter() - t
        busy_s += took
        with engine.connect() as conn:
            lags += [
                (tick - r.due_at).total_seconds() + took
                for r in conn.execute(
                    select(outbox.c.due_at).where(outbox.c.decided_at == tick)
                ).all()
            ]
    lags.sort()
    with engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
    return {
        "size": size,
        "load_s": load_s,
        "idle_ms_median": statistics.median(idle),
        "idle_ms_max": max(idle),
        "due": due,
        "decided": decided,
        "outbox_rows": rows,
        "pass_s": busy_s,
        "decisions_per_s": decided / busy_s if busy_s else 0.0,
        "lag_p99_s": lags[max(int(len(lags) * 0.99) - 1, 0)] if lags else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg", default=os.environ.get("SLA_BOT_TEST_DATABASE_URL"))
    parser.add_argument("--interval", type=float, default=1.0, help="tick interval (s)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        loaded = wall_rules(Path(tmp) / "rules")
        dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
        print(
            f"{'db':<10} {'leads':>9} {'idle pass ms (med/max)':>23} {'due':>6} "
            f"{'busy s':>9} {'decisions/s':>11} {'lag p99 s':>9}"
        )
        for db in dbs:
            for size in sizes:
                schema = None
                if db == "sqlite":
                    engine = make_engine(f"sqlite:///{tmp}/bench-{size}.db", synchronous="NORMAL")
                elif args.pg:
                    engine, schema = pg_engine(args.pg)
                else:
                    print("postgresql: set --pg or SLA_BOT_TEST_DATABASE_URL")
                    break
                try:
                    r = run_one(engine, loaded, size, args.interval)
                finally:
                    if schema:
                        with engine.begin() as conn:
                            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                    engine.dispose()
                idle = f"{r['idle_ms_median']:.2f}/{r['idle_ms_max']:.2f}"
                print(
                    f"{db:<10} {size:>9} {idle:>23} {r['due']:>6} {r['pass_s']:>9.3f} "
                    f"{r['decisions_per_s']:>11.0f} {r['lag_p99_s']:>9.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
