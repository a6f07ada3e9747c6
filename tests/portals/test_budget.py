"""The shared budget's rule, with a manual clock (SQLite takes the process's clock; PostgreSQL's
own clock is exercised by the two-worker acceptance test)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from integrations.hubspot.fake import ManualClock, max_in_any_window
from sla_bot.db import migrate
from sla_bot.db.engine import make_engine
from sla_bot.portals.budget import HOLD, SharedBudget


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Engine:
    engine = make_engine(sqlite_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def budgets(engine: Engine, clock: ManualClock, n: int = 2) -> list[SharedBudget]:
    """`n` budgets of one portal, as `n` worker processes would hold them."""
    return [
        SharedBudget(engine, 7, "general", 3, 10.0, sleep=clock.sleep, wall=clock.monotonic)
        for _ in range(n)
    ]


def test_workers_together_never_exceed_the_budget_in_any_window(sqlite_engine, tmp_path: Path):
    clock = ManualClock(start=0.0)
    workers = budgets(sqlite_engine, clock)
    arrivals = []
    for i in range(12):
        budget = workers[i % 2]
        grant = budget.acquire()
        arrivals.append(clock.monotonic())
        clock.advance(0.5)  # the request is out for half a second
        budget.release(grant)

    assert max_in_any_window(arrivals, 10.0) == 3
    assert arrivals[3] >= arrivals[0] + 10.0  # the 4th waits for the 1st one's window


def test_a_slot_is_busy_one_window_from_the_response_not_the_request(sqlite_engine):
    clock = ManualClock(start=0.0)
    [budget] = budgets(sqlite_engine, clock, 1)
    grants = [budget.acquire() for _ in range(3)]
    clock.advance(4.0)  # slow responses: they come back at t=4
    for grant in grants:
        budget.release(grant)

    budget.acquire()

    assert clock.monotonic() == pytest.approx(14.0)


def test_a_crashed_workers_slot_frees_itself(sqlite_engine):
    clock = ManualClock(start=0.0)
    [budget] = budgets(sqlite_engine, clock, 1)
    for _ in range(3):
        budget.acquire()  # never released: the process died mid-request

    budget.acquire()

    assert clock.monotonic() == pytest.approx(10.0 + HOLD)


def test_a_pause_holds_every_slot(sqlite_engine):
    clock = ManualClock(start=0.0)
    first, second = budgets(sqlite_engine, clock)
    first.pause(5.0)

    second.acquire()

    assert clock.monotonic() == pytest.approx(5.0)
