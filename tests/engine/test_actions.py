"""Slack button actions: compare-and-set, ack timeout, snooze, log touch, round-robin reassign."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from sla_bot.clock import FrozenClock
from sla_bot.engine import actions
from sla_bot.engine.actions import ActionRefused, LeadRef
from sla_bot.engine.audit import history
from tests.conftest import T0
from tests.engine.harness import Harness
from tests.engine.test_events import PROPS, _sync

M = timedelta(minutes=1)


def _lead(h: Harness, oid: int = 1) -> tuple[int, LeadRef]:
    h.webhook(_sync(oid, PROPS))
    h.at(T0 + 4 * M)  # the warning is out
    payload = h.rows("slack")[-1]["payload"]
    return payload["lead"]["id"], LeadRef(payload["lead"]["id"], payload["lead"]["version"])


def test_stale_button_is_refused_and_closed_lead_too(engine: Engine, clock: FrozenClock) -> None:
    h = Harness(engine, clock)
    lead_id, ref = _lead(h)
    summary = actions.lead_summary(engine, lead_id)
    assert summary["team"] == "inbound_sdr" and summary["status"] == "open"
    msg = actions.acknowledge(engine, ref, by="U1", now=clock.now(), silence=timedelta(minutes=30))
    assert "no nudges" in msg
    with pytest.raises(ActionRefused, match="already handled"):
        actions.acknowledge(engine, ref, by="U2", now=clock.now(), silence=timedelta(minutes=5))
    with engine.connect() as conn:
        assert [e["kind"] for e in history(conn, lead_id)].count("ack") == 1


def test_ack_silences_the_ladder_then_nudges_once_without_a_touch(
    engine: Engine, clock: FrozenClock
) -> None:
    h = Harness(engine, clock)
    lead_id, ref = _lead(h)
    actions.acknowledge(engine, ref, by="U1", now=clock.now(), silence=timedelta(minutes=15))
    h.at(T0 + 15 * M)  # ladder.1 (owner, +5m) and ladder.2 (manager, +15m) are silenced
    assert [r["kind"] for r in h.rows("slack")] == ["first_touch.warning"]
    h.at(T0 + 19 * M)  # ack ran out (4m + 15m) with no touch: one nudge, the ladder goes on
    assert [r["kind"] for r in h.rows("slack")] == ["first_touch.warning", "ack.expired"]
    h.at(T0 + 25 * M)
    assert "reassigned" in [r["kind"] for r in h.rows("slack")]


def test_log_touch_counts_and_is_written_back(engine: Engine, clock: FrozenClock) -> None:
    h = Harness(engine, clock)
    lead_id, ref = _lead(h)
    msg = actions.log_touch(
        engine, ref, by="U1", at=clock.now(), kind="call", outcome="attempt", note="voicemail"
    )
    assert "touch 1" in msg
    h.at(T0 + 30 * M)
    lead = h.lead(1)
    assert lead.touches[0].owner_id == "1001" and lead.touches[0].kind == "call"
    assert [r["kind"] for r in h.rows("slack")] == ["first_touch.warning"]  # ladder stopped
    (row,) = h.rows("hubspot", kind="create_engagement")
    assert row["payload"]["op"] == "create_engagement" and row["payload"]["outcome"] == "attempt"


def test_snooze_holds_owner_dms_not_the_manager(engine: Engine, clock: FrozenClock) -> None:
    h = Harness(engine, clock)
    lead_id, ref = _lead(h)
    until = T0 + timedelta(hours=1)
    actions.snooze(engine, ref, by="U1", until=until, now=clock.now())
    h.at(T0 + 15 * M)
    by_kind = {(r["kind"], r["payload"]["recipient"]["role"]): r for r in h.rows("slack")}
    assert by_kind[("ladder", "owner")]["next_attempt_at"] == until
    manager = by_kind[("ladder", "manager")]
    assert manager["status"] == "sent" and manager["due_at"] == T0 + 15 * M
    with pytest.raises(ActionRefused):
        actions.snooze(engine, LeadRef(lead_id, 99), by="U1", until=until, now=clock.now())


def test_reassign_round_robin_spreads_leads(engine: Engine, clock: FrozenClock) -> None:
    h = Harness(engine, clock)
    picked = []
    for oid in (1, 2):
        lead_id, ref = _lead(h, oid)
        actions.reassign(engine, h.loaded, ref, by="U9", to_owner_id=None, now=clock.now())
        picked.append(h.lead(oid).owner_id)
    assert picked == ["1002", "1003"]  # least recently assigned first
    assert len(h.rows("hubspot", kind="update_contact")) == 2
    assert len(h.rows("slack", kind="reassigned")) == 4
