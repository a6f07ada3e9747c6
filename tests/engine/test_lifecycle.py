"""Lifecycle: after-hours start, owner changes, owner-assigned clocks, the payload contract."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from sla_bot.clock import FrozenClock
from sla_bot.db.schema import leads
from sla_bot.engine.audit import history
from tests.conftest import T0
from tests.engine.harness import RULES, Harness, load_rules, prop
from tests.engine.test_events import PROPS, _sync

M = timedelta(minutes=1)
PAYLOAD_KEYS = {
    "kind",
    "step_key",
    "thread_key",
    "recipient",
    "lead",
    "deadline",
    "timezone",
    "touches",
    "text",
    "detail",
    "reason",
}
LEAD_KEYS = {
    "id",
    "portal_id",
    "object_id",
    "name",
    "email",
    "company",
    "source",
    "action",
    "created_at",
    "hubspot_url",
    "owner_id",
    "owner_name",
    "version",
}


def test_after_hours_lead_starts_its_clock_at_the_next_opening(
    engine: Engine, clock: FrozenClock
) -> None:
    friday_1758 = datetime.fromisoformat("2026-11-20T22:58:00+00:00")  # 17:58 in New York
    clock.set(friday_1758)
    h = Harness(engine, clock)
    h.webhook(_sync(1, {**PROPS, "createdate": friday_1758.isoformat()}))
    h.tick()
    # 4 of 5 business minutes: 2 on Friday, 2 on Monday from 08:00 -> Monday 08:02 EST.
    assert h.lead(1).next_due_at == datetime.fromisoformat("2026-11-23T13:02:00+00:00")
    # The owner was told at once (17:58 is still working time), with Monday's deadline.
    (assigned,) = h.rows("slack", kind="lead.assigned")
    assert assigned["status"] == "sent"
    assert assigned["payload"]["deadline"] == "2026-11-23T13:03:00+00:00"
    h.at(datetime.fromisoformat("2026-11-23T13:02:00+00:00"))
    (row,) = h.rows("slack", kind="first_touch.warning")
    assert row["payload"]["deadline"] == "2026-11-23T13:03:00+00:00"
    assert row["payload"]["timezone"] == "America/New_York"


def test_owner_change_keeps_the_clock_and_the_breach(engine: Engine, clock: FrozenClock) -> None:
    h = Harness(engine, clock)
    h.webhook(_sync(1, PROPS))
    h.at(T0 + 5 * M)  # breached: ladder.1 went to Alex
    h.webhook(prop(1, T0 + 6 * M, "hubspot_owner_id", "1003"))
    h.at(T0 + 6 * M)
    lead = h.lead(1)
    assert lead.owner_id == "1003" and lead.clock_started_at == T0  # no restart
    assert lead.state.decided["first_touch.breach"] == "sent"
    h.at(T0 + 15 * M)
    h.at(T0 + 25 * M)  # the ladder goes on from the original breach, now about Casey's lead
    # A person chose Casey after the ladder started: round robin does not override that.
    assert h.rows("slack", kind="reassigned") == [] and h.lead(1).owner_id == "1003"
    (ladder3,) = [r for r in h.rows("slack") if r["step"] == "ladder.3"]
    assert ladder3["payload"]["recipient"]["owner_id"] == "1003"
    with engine.connect() as conn:
        kinds = [e["kind"] for e in history(conn, lead.id or 0)]
    assert "owner" in kinds and "reassign.skipped" in kinds and kinds.count("step.fired") >= 4


def test_owner_assigned_clock_waits_for_an_owner_then_never_restarts(
    engine: Engine, clock: FrozenClock, tmp_path: Path
) -> None:
    text = (
        (RULES / "default.yaml")
        .read_text()
        .replace("clock_starts: created ", "clock_starts: owner_assigned ")
    )
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "default.yaml").write_text(text)
    h = Harness(engine, clock, load_rules(tmp_path / "rules"))
    h.webhook(_sync(1, {"createdate": T0.isoformat(), "lead_source": "demo_request"}))
    h.at(T0 + 30 * M)
    lead = h.lead(1)
    assert lead.policy == "inbound_demo" and lead.next_due_at is None  # waiting for an owner
    assigned = T0 + 40 * M
    h.webhook(prop(1, assigned, "hubspot_owner_id", "1001"))
    h.at(assigned)
    assert h.lead(1).clock_started_at == assigned
    assert h.lead(1).next_due_at == assigned + 4 * M
    h.webhook(prop(1, assigned + 2 * M, "hubspot_owner_id", "1002", n=1))
    h.webhook(prop(1, assigned + 2 * M, "hubspot_owner_assigneddate", "x", n=2))
    h.at(assigned + 2 * M)
    assert h.lead(1).next_due_at == assigned + 4 * M  # same deadline, new owner
    h.at(assigned + 4 * M)
    told = [r["payload"]["recipient"]["owner_id"] for r in h.rows("slack", kind="lead.assigned")]
    assert told == ["1001", "1002"]  # each owner heard the moment the lead was theirs
    (row,) = h.rows("slack", kind="first_touch.warning")
    assert row["payload"]["recipient"]["owner_id"] == "1002"


def test_slack_rows_follow_the_payload_contract(engine: Engine, clock: FrozenClock) -> None:
    h = Harness(engine, clock)
    h.webhook(_sync(1, {**PROPS, "firstname": "Ann", "company": "Acme"}))
    for minute in (0, 4, 5, 15, 25):
        h.at(T0 + minute * M)
    rows = h.rows("slack")
    kinds = {r["kind"] for r in rows}
    assert kinds == {"lead.assigned", "first_touch.warning", "ladder", "reassigned"}
    for r in rows:
        p = r["payload"]
        assert set(p) >= PAYLOAD_KEYS and set(p["lead"]) >= LEAD_KEYS
        assert p["kind"] == r["kind"] and p["thread_key"] == f"lead:{r['lead_id']}"
        assert set(p["recipient"]) == {"role", "slack", "email", "owner_id", "name"}
        assert {"count", "min", "max", "history"} <= set(p["touches"])
        assert r["idempotency_key"].startswith(f"lead:{r['lead_id']}:{p['step_key']}")
        assert r["step"] == p["step_key"] and r["recipient"].startswith(p["recipient"]["role"])
        assert p["lead"]["hubspot_url"].endswith(f"/record/0-1/{r['object_id']}")
    assert all("old_owner" in r["payload"] for r in rows if r["kind"] == "reassigned")


def test_workflow_payload_creates_a_lead(engine: Engine, clock: FrozenClock) -> None:
    h = Harness(engine, clock)
    body = {
        "vid": 77,
        "portal-id": 62515,
        "properties": {k: {"value": v} for k, v in PROPS.items()},
    }
    h.workflow(body)
    h.at(T0)
    assert h.lead(77).policy == "inbound_demo"


def test_old_contacts_found_late_do_not_replay_their_escalations(
    engine: Engine, clock: FrozenClock
) -> None:
    h = Harness(engine, clock)
    old = T0 - timedelta(days=3)
    h.webhook(_sync(1, {**PROPS, "createdate": old.isoformat()}), source="reconcile")
    h.at(T0)
    assert h.rows("slack") == []  # the whole ladder was due days ago: recorded, not sent
    lead = h.lead(1)
    with engine.connect() as conn:
        skipped = [e for e in history(conn, lead.id or 0) if e["kind"] == "step.skipped"]
    assert {e["detail"]["step"] for e in skipped} >= {"first_touch.warning", "ladder.4#r2"}
    assert lead.next_due_at is not None and lead.next_due_at > T0  # the cadence goes on


def test_a_lead_whose_decision_fails_is_retried_later_without_losing_steps(
    engine: Engine, clock: FrozenClock
) -> None:
    h = Harness(engine, clock)
    h.webhook(_sync(1, PROPS), _sync(2, PROPS))
    h.tick()
    with engine.begin() as conn:  # a snapshot no rules version can read
        conn.execute(
            leads.update()
            .where(leads.c.object_id == 1)
            .values(policy_snapshot='{"format": 99}', policy_hash="broken")
        )
    h.at(T0 + 4 * M)
    warned = [r["object_id"] for r in h.rows("slack", kind="first_touch.warning")]
    assert warned == [2]  # the other lead is not held up
    broken = h.lead(1)
    assert broken.next_due_at == T0 + 4 * M + timedelta(minutes=5)
    assert "first_touch.warning" not in broken.state.decided
