"""Migration 0008 backfills outcome facts of existing leads from what the engine recorded."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine

from sla_bot.clock import FrozenClock
from sla_bot.db import migrate
from sla_bot.db.schema import lead_outcomes
from tests.conftest import T0
from tests.engine.harness import Harness, prop
from tests.engine.test_events import PROPS
from tests.outcomes.util import contact, events

M = timedelta(minutes=1)
# What the audit trail and the lead row can tell without the rules' calendars.
COMPARED = (
    "portal_id",
    "object_id",
    "name",
    "policy",
    "team",
    "owner_id",
    "source",
    "campaign",
    "started_at",
    "first_touch_at",
    "first_touch_owner_id",
    "wall_seconds",
    "result",
    "touches",
    "last_touch_at",
    "escalations",
    "escalation_level",
    "reassignments",
    "gap_misses",
    "min_touches",
    "outcome",
    "outcome_at",
    "touches_before_outcome",
    "premature_dq",
    "qualified_at",
    "qualified_after_s",
)


def _rows(engine: Engine) -> dict[int, dict]:
    with engine.connect() as conn:
        rows = conn.execute(select(lead_outcomes).order_by(lead_outcomes.c.object_id)).all()
    return {r.object_id: dict(r._mapping) for r in rows}


def test_backfill_agrees_with_the_engine_on_what_the_trail_records(
    engine: Engine, clock: FrozenClock
) -> None:
    h = Harness(engine, clock)
    props = {**PROPS, "firstname": "Dana", "utm_campaign": "spring", "hs_analytics_source": "X"}
    h.webhook(*(contact(oid, props) for oid in (1, 2, 3, 4)))
    h.at(T0)
    h.webhook(prop(2, T0 + 3 * M, "num_contacted_notes", 1, n=1))
    h.webhook(prop(3, T0 + 2 * M, "num_contacted_notes", 1, n=2))
    h.webhook(prop(3, T0 + 4 * M, "hs_lead_status", "UNQUALIFIED", n=3))
    for minute in (3, 4, 5, 15, 25):  # lead 1: breach, manager, round robin to Blair
        h.at(T0 + minute * M)
    h.webhook(prop(1, T0 + 26 * M, "num_contacted_notes", 1, n=4))
    h.webhook(prop(4, T0 + 27 * M, "lifecyclestage", "salesqualifiedlead", n=5))
    h.at(T0 + 27 * M)
    engine_facts = _rows(engine)
    engine_events = {oid: events(engine, oid) for oid in engine_facts}
    assert engine_facts[1]["reassignments"] == 1 and engine_facts[1]["escalation_level"] == 3
    assert engine_facts[4]["outcome"] == "converted"

    migrate.downgrade(engine, "0004")
    migrate.upgrade(engine)
    backfilled = _rows(engine)
    assert backfilled.keys() == engine_facts.keys()
    for oid, row in backfilled.items():
        assert row["backfilled"] == 1 and row["business_seconds"] is None
        assert {k: row[k] for k in COMPARED} == {k: engine_facts[oid][k] for k in COMPARED}, oid
        assert events(engine, oid) == engine_events[oid], oid
