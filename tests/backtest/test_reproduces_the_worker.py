"""THE central test: backtesting the rules in force reproduces what the worker did, step by step.

A history is produced by the real worker code (intake, split, apply, fetch from the fake
HubSpot, sweep, Slack buttons through `actions`, delivery) over varied leads on a frozen clock
(tests/backtest/world.py). The backtest then reads that history read-only and replays it under
the same rules. Every outbox row (key, step occurrence, recipient, payload, due and decided
times, withdrawn or not and why), every audit row of every lead (in order, with its time and
detail) and every lead's final state must be equal.

`SLA_BOT_BACKTEST_LEADS=300 pytest tests/backtest/test_reproduces_the_worker.py` runs it
bigger (the default keeps CI fast).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from integrations.hubspot.client import HubSpotClient
from integrations.hubspot.fake import FakeHubSpot
from sla_bot.backtest.load import Period, load_history, open_readonly
from sla_bot.backtest.replay import Outcome, replay
from sla_bot.clock import FrozenClock
from sla_bot.db.engine import make_engine
from sla_bot.db.schema import lead_events, leads, outbox
from sla_bot.engine import leads as repo
from sla_bot.fetching import Fetcher
from tests.backtest.world import START, run_worker, scripts
from tests.engine.harness import load_rules

LEADS = int(os.environ.get("SLA_BOT_BACKTEST_LEADS", "60"))
END = START + timedelta(days=9)


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def recorded(engine: Engine) -> tuple[list[dict], dict[int, list], dict[int, dict]]:
    with engine.connect() as conn:
        rows = [
            {
                "key": r.idempotency_key,
                "lead": r.lead_id,
                "channel": r.channel,
                "kind": r.kind,
                "step": r.step,
                "recipient": r.recipient,
                "payload": json.loads(r.payload),
                "decided_at": r.decided_at,
                "due_at": r.due_at,
                "status": "cancelled" if r.status == "cancelled" else "live",
                "error": r.error,
            }
            for r in conn.execute(select(outbox).order_by(outbox.c.id))
        ]
        audit: dict[int, list] = defaultdict(list)
        for r in conn.execute(select(lead_events).order_by(lead_events.c.id)):
            audit[r.lead_id].append((r.at, r.kind, json.loads(r.detail)))
        final = {r.id: _lead_view(repo.from_row(r)) for r in conn.execute(select(leads))}
    return rows, dict(audit), final


def replayed(out: Outcome) -> tuple[list[dict], dict[int, list], dict[int, dict]]:
    rows = [
        {
            "key": r.key,
            "lead": r.lead_id,
            "channel": r.channel,
            "kind": r.kind,
            "step": r.step,
            "recipient": r.recipient,
            "payload": _json(r.payload),
            "decided_at": r.decided_at,
            "due_at": r.due_at,
            "status": r.status if r.status == "cancelled" else "live",
            "error": r.error,
        }
        for r in out.rows
    ]
    audit: dict[int, list] = defaultdict(list)
    for lead_id, at, kind, detail in out.audit:
        audit[lead_id].append((at, kind, _json(detail)))
    final = {lead.id: _lead_view(lead) for lead in out.leads.values()}
    return rows, dict(audit), final


def _lead_view(lead: Any) -> dict[str, Any]:
    return {
        "status": lead.status,
        "closed_reason": lead.closed_reason,
        "owner": lead.owner_id,
        "policy": lead.policy,
        "next_due_at": lead.next_due_at,
        "touches": _json([t.model_dump(mode="json") for t in lead.touches]),
        "state": _json(lead.state.model_dump(mode="json", exclude_defaults=True)),
        "properties": _json(lead.properties),
    }


def test_backtesting_the_rules_in_force_reproduces_the_worker(
    engine: Engine,
    db_url: str,
    fake_hubspot: FakeHubSpot,
    hubspot_client: HubSpotClient,
) -> None:
    del engine  # migrated; the worker below writes through an engine that skips fsync (speed)
    engine = make_engine(db_url, synchronous="OFF")
    loaded = load_rules()
    clock = FrozenClock(START)
    fetcher = Fetcher(hubspot_client)
    happenings = scripts(LEADS)
    run_worker(
        engine,
        clock,
        happenings,
        until=END,
        hubspot=fake_hubspot,
        fetcher=fetcher,
        loaded=loaded,
    )
    want_rows, want_audit, want_leads = recorded(engine)
    engine.dispose()
    # The history is varied: what the acceptance asks for really happened.
    kinds = {k for entries in want_audit.values() for _, k, _ in entries}
    assert {"ack", "snooze", "touch", "reassigned", "fetched", "closed"} <= kinds
    assert {"message.withdrawn", "step.silenced", "reassign.skipped"} <= kinds
    reasons = {d.get("reason") for e in want_audit.values() for _, k, d in e if k == "closed"}
    assert {"deleted", "merged"} <= reasons

    ro = open_readonly(db_url)
    try:
        history = load_history(ro, Period(START, END))
    finally:
        ro.dispose()
    assert not history.not_replayed and not history.unknown
    out = replay(history, loaded, until=END, keep=True)
    got_rows, got_audit, got_leads = replayed(out)

    assert out.errors == 0
    for lead_id in sorted(want_audit):
        assert got_audit.get(lead_id, []) == want_audit[lead_id], f"lead {lead_id}"
    assert {r["key"]: r for r in got_rows} == {r["key"]: r for r in want_rows}
    assert got_rows == want_rows  # and in the same order
    assert got_leads == want_leads
