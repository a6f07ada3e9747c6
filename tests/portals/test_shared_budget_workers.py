"""Acceptance: two worker processes on PostgreSQL during a backfill across two portals keep
each portal within its budget in every window; the fake answers no 429.

Scaled for CI: 1,500 contacts and a budget of 25 requests per 1 s window (and 4 searches per
second), enforced by the fake exactly as configured; the mechanism is the same at any size.
`python -m bench.portal_budget` runs the real size (5,000 contacts, 100 per 10 s) and prints
the per-window maxima.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bench.portal_budget import run
from tests.conftest import PG_URL


@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (SLA_BOT_TEST_DATABASE_URL)")
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_workers_share_each_portals_budget(engine: Engine, db_url: str, tmp_path: Path) -> None:
    found, _, urgent = run(
        db_url,
        tmp_path,
        contacts=1500,
        budget="25/1s",
        search="4/1s",
        share=0.02,
        timeout=600,
    )

    assert urgent == 30
    for portal in found:
        assert portal.rejected == 0, portal
        assert portal.max_per_window <= 25, portal
        assert portal.max_searches_per_window <= 4, portal
        assert portal.requests >= 8 + 15  # batch reads, a write-back per urgent lead
