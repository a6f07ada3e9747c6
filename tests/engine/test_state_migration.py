"""Migration 0004: leads saved with the old untyped state come back typed, and carry on."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import insert, select

from sla_bot.db import migrate
from sla_bot.db.engine import make_engine
from sla_bot.db.schema import leads, outbox
from sla_bot.engine import leads as repo
from sla_bot.engine.sweep import sweep_due
from tests.conftest import T0
from tests.engine.harness import PORTAL, load_rules

M = timedelta(minutes=1)
MS = int(T0.timestamp() * 1000)
LEGACY_STATE = {
    "done": ["lead.x", "first_touch.warning", "disqualification.premature", "pause.resume"],
    "seen_at": T0.isoformat(),
    "ack": {"n": 1, "by": "U1", "at": T0.isoformat(), "until": (T0 + 30 * M).isoformat()},
    "snooze_until": (T0 + 60 * M).isoformat(),
    "cancelled_kinds": ["ladder"],
    "timeline_status": "awaiting_first_touch",
    "button_version": 3,
    "prop_ms": {"hs_lead_status": MS + 60_000, "createdate": MS, "follow_up_date": MS},
    "previous": {"hs_lead_status": "NEW"},
    "owners": [{"at": T0.isoformat(), "owner_id": "1001"}],
    "owner_names": {"1001": "Alex"},
    "hs_count": 2,
    "hs_last": T0.isoformat(),
}
LEGACY_TOUCH = {
    "at": T0.isoformat(),
    "connect": False,
    "kind": "hubspot",
    "owner_id": "1001",
    "signals": ["num_contacted_notes"],
    "something_old": 1,
}


def test_a_legacy_lead_is_converted_and_keeps_what_it_had_decided(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate.upgrade(engine, "0003")
    loaded = load_rules()
    snapshot = loaded.policy_snapshot("inbound_demo")
    snapshot["definition"]["pause"]["resume_property"] = "follow_up_date"
    props = {
        "createdate": T0.isoformat(),
        "hs_lead_status": "UNQUALIFIED",
        "follow_up_date": "2026-12-01",
        "hubspot_owner_id": "1001",
        "lead_source": "demo_request",
    }
    with engine.begin() as conn:
        conn.execute(
            insert(leads).values(
                portal_id=PORTAL,
                object_id=7,
                status="open",
                policy="inbound_demo",
                policy_hash=loaded.policy_hash("inbound_demo"),
                policy_snapshot=json.dumps(snapshot),
                rules_version=loaded.version,
                owner_id="1001",
                created_at=T0,
                clock_started_at=T0,
                properties=json.dumps(props),
                touches=json.dumps([LEGACY_TOUCH]),
                touch_count=1,
                state=json.dumps(LEGACY_STATE),
                next_due_at=T0 + 5 * M,
                updated_at=T0,
            )
        )
        conn.execute(
            insert(outbox).values(
                lead_id=1,
                portal_id=PORTAL,
                object_id=7,
                idempotency_key="lead:1:g0:ladder.1:owner:U0ALEX0001",
                channel="slack",
                kind="ladder",
                payload=json.dumps({"recipient": {"role": "owner", "owner_id": "1001"}}),
                status="pending",
                decided_at=T0,
                next_attempt_at=T0 + 60 * M,
            )
        )
    migrate.upgrade(engine)
    with engine.connect() as conn:
        lead = repo.find(conn, PORTAL, 7)
        row = conn.execute(select(outbox.c.step, outbox.c.recipient)).one()
    assert lead is not None
    s = lead.state
    assert s.first_seen_at == T0 and s.button_version == 3 and s.owner_names == {"1001": "Alex"}
    assert s.ack is not None and s.ack.until == T0 + 30 * M
    assert s.snooze is not None and s.snooze.until == T0 + 60 * M
    assert (s.hubspot_touch_count, s.hubspot_last_contacted) == (2, T0)
    assert [(o.owner_id, o.by) for o in s.owners] == [("1001", "legacy")]
    assert set(s.decided) == {
        "lead.x",
        "first_touch.warning",
        "disqualification.premature@20261120T150100Z",  # when the status was set
        "pause.resume@20261201T000000Z",  # the follow-up date
    }
    assert s.values["hs_lead_status"] == [(MS + 60_000 - 1, "NEW"), (MS + 60_000, "UNQUALIFIED")]
    assert lead.touches[0].signals == ["num_contacted_notes"]
    assert (row.step, row.recipient) == ("ladder.1", "owner:1001")
    # The converted lead decides as before: the warning it had sent is not sent again.
    sweep_due(engine, loaded, now=T0 + 5 * M)
    with engine.connect() as conn:
        kinds = [r.step for r in conn.execute(select(outbox.c.step)).all()]
    assert "first_touch.warning" not in kinds
    engine.dispose()
