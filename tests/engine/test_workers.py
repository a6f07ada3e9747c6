"""Acceptance: several real worker processes, and a worker killed with SIGKILL mid-sweep."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bench.sweep import seed_leads, wall_rules
from sla_bot.db.schema import lead_events, leads, outbox
from tests.conftest import PG_URL
from tests.engine.processes import WorkerProcess


def _counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
        keys = conn.execute(select(func.count(func.distinct(outbox.c.idempotency_key)))).scalar()
        due = conn.execute(
            select(func.count()).select_from(leads).where(leads.c.next_due_at <= datetime.now(UTC))
        ).scalar_one()
    return rows, keys or 0, due


def _wait(engine: Engine, want: int, workers: list[WorkerProcess], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows, _, due = _counts(engine)
        if rows >= want and due == 0:
            return
        assert all(w.alive() for w in workers), workers[0].log.read_text()[-3000:]
        time.sleep(0.1)
    raise AssertionError(f"only {_counts(engine)} after {timeout}s")


def _assert_exactly_once(engine: Engine, n: int) -> None:
    with engine.connect() as conn:
        per_lead = conn.execute(
            select(outbox.c.lead_id, func.count()).group_by(outbox.c.lead_id)
        ).all()
        decided = conn.execute(
            select(lead_events.c.lead_id, func.count())
            .where(lead_events.c.kind == "step.fired")
            .group_by(lead_events.c.lead_id)
        ).all()
    assert len(per_lead) == n and {c for _, c in per_lead} == {1}
    # One decision per lead: a step decided twice would have two audit rows.
    assert len(decided) == n and {c for _, c in decided} == {1}


def _env(db_url: str, rules: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": db_url,
        "SLA_BOT_RULES_DIR": str(rules),
        "SLA_BOT_LOG_LEVEL": "WARNING",
    }


def test_sigkill_mid_sweep_then_restart_decides_everything_once(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    loaded = wall_rules(tmp_path / "rules")
    n = 6000
    seed_leads(engine, loaded, n, due=n, now=datetime.now(UTC))
    worker = WorkerProcess(_env(db_url, tmp_path / "rules"), tmp_path).start()
    try:
        deadline = time.monotonic() + 60
        while _counts(engine)[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        worker.kill()  # mid-sweep: some batches committed, one perhaps half-done
        at_kill = _counts(engine)[0]
        assert 0 < at_kill < n, "the worker was not killed mid-sweep; raise n"
        worker = WorkerProcess(_env(db_url, tmp_path / "rules"), tmp_path).start()
        _wait(engine, n, [worker])
    finally:
        worker.stop()
    rows, keys, _ = _counts(engine)
    assert rows == keys == n
    _assert_exactly_once(engine, n)


@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (SLA_BOT_TEST_DATABASE_URL)")
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_workers_on_postgresql_never_decide_a_step_twice(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    loaded = wall_rules(tmp_path / "rules")
    n = 2000
    seed_leads(engine, loaded, n, due=n, now=datetime.now(UTC))  # all due at the same instant
    env = _env(db_url, tmp_path / "rules")
    workers = [WorkerProcess(env, tmp_path, f"worker{i}").start() for i in range(2)]
    try:
        _wait(engine, n, workers)
    finally:
        for w in workers:
            w.stop()
    rows, keys, _ = _counts(engine)
    assert rows == keys == n
    _assert_exactly_once(engine, n)
