"""Reading what the engine recorded: outcome facts, their events, the database counters."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from sla_bot import metrics_store
from sla_bot.db.schema import lead_outcome_events, lead_outcomes
from tests.engine.harness import PORTAL


def facts(engine: Engine, object_id: int, portal: int = PORTAL) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            select(lead_outcomes).where(
                lead_outcomes.c.portal_id == portal, lead_outcomes.c.object_id == object_id
            )
        ).first()
    assert row is not None, f"no outcome facts for contact {object_id}"
    return dict(row._mapping)


def events(engine: Engine, object_id: int) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(lead_outcome_events.c.kind, lead_outcome_events.c.key)
            .where(lead_outcome_events.c.object_id == object_id)
            .order_by(lead_outcome_events.c.at, lead_outcome_events.c.key)
        ).all()
    return [(r.kind, r.key) for r in rows]


def counters(engine: Engine) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(metric, sorted labels) -> value summed over processes."""
    with engine.connect() as conn:
        got = metrics_store.totals(conn)
    return {
        (name, tuple(sorted(metrics_store.labels_of(labels).items()))): value
        for (name, labels), value in got.items()
    }


def contact(object_id: int, props: dict[str, Any], at: Any = None) -> dict[str, Any]:
    """A whole contact as an event (what reconciliation stores), so routing needs no fetch."""
    from sla_bot.clock import to_epoch_ms
    from tests.conftest import T0

    return {
        "subscriptionType": "contact.sync",
        "portalId": PORTAL,
        "objectId": object_id,
        "occurredAt": to_epoch_ms(at or T0),
        "eventId": 0,
        "subscriptionId": 0,
        "properties": props,
    }
