"""A stateful property test: random lives of one lead through the real apply, sweep and outbox.

Hypothesis drives sequences of what happens to real leads (owner changes, touches in HubSpot and
in Slack with late echoes, connects, pauses, resumes, stops, snoozes, "I'm on it", deletion,
duplicate and late deliveries, time passing) through the worker's own code on a real SQLite
database with a frozen clock, and checks after every step:

1. no step occurrence has two live outbox rows for one recipient;
2. nothing is sent for a closed, connected or held lead;
3. every owner-bound message goes to the owner at the time it is decided;
4. no automatic reassignment overwrites a person's reassignment;
5. after any resume, only steps due at or after the resume instant are sent;
6. the touches counted equal the distinct touches fed in.

The default example count keeps CI fast; run it longer with
`SLA_BOT_MACHINE_EXAMPLES=2000 pytest tests/engine/test_lifecycle_machine.py`.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import select

from sla_bot.clock import FrozenClock, to_epoch_ms
from sla_bot.db import migrate
from sla_bot.db.engine import make_engine
from sla_bot.db.schema import outbox
from sla_bot.engine import actions
from sla_bot.engine.actions import ActionRefused, LeadRef
from sla_bot.rules.steps import NUDGES, REASSIGNED
from tests.conftest import T0
from tests.engine.harness import PORTAL, Harness, ev, load_rules, prop

EXAMPLES = int(os.environ.get("SLA_BOT_MACHINE_EXAMPLES", "30"))
OWNERS = ("1001", "1002", "1003")
QUIET = {"paused", "stopped", "disqualified", "connected", "recycled"}
RULES = load_rules()


class LeadLife(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        self.engine = make_engine(f"sqlite:///{Path(self.dir.name) / 'machine.db'}")
        migrate.upgrade(self.engine)
        self.clock = FrozenClock(T0)
        self.h = Harness(self.engine, self.clock, RULES)
        self.n = 0  # keeps events distinct
        self.count = 0  # num_contacted_notes as HubSpot sees it
        self.fed = 0  # distinct touches fed in
        self.echoes: list[tuple[Any, Any]] = []  # Slack touches HubSpot has not echoed yet
        self.held: set[str] = set()  # "paused" / "stopped" while on
        self.resumes: list[Any] = []
        self.person_moves: list[Any] = []  # times a person moved the lead between owners
        self.owner: str | None = "1001"
        self.deleted = False
        self.delivered_before = 0
        self.last_batch: list[dict[str, Any]] = []
        props = {"createdate": T0.isoformat(), "hubspot_owner_id": "1001"}
        props["lead_source"] = "demo_request"
        self._send({"subscriptionType": "contact.sync", "properties": props})

    def teardown(self) -> None:
        self.engine.dispose()
        self.dir.cleanup()

    # --- plumbing ----------------------------------------------------------------------------

    def _send(self, *events: dict[str, Any]) -> None:
        items = []
        for e in events:
            self.n += 1
            base = ev(
                e.get("subscriptionType", "contact.propertyChange"), 1, self.clock.now(), self.n
            )
            items.append({**base, **e})
        self.last_batch = items
        self.h.webhook(*items)
        self.h.tick()
        self._check_tick()

    def _prop(self, name: str, value: Any) -> dict[str, Any]:
        self.n += 1
        return prop(1, self.clock.now(), name, value, self.n)

    def _lead(self) -> Any:
        return self.h.lead(1)

    def _rows(self) -> list[Any]:
        with self.engine.connect() as conn:
            return conn.execute(select(outbox)).all()

    def _check_tick(self) -> None:
        """Invariants about what this tick decided and delivered."""
        lead = self._lead()
        new = self.h.slack.sent[self.delivered_before :]
        self.delivered_before = len(self.h.slack.sent)
        quiet = lead.status == "closed" or lead.state.status in QUIET
        if quiet:  # 2. nothing reaches a closed, connected or held lead
            assert not [i for i in new if i.kind in NUDGES], [i.kind for i in new]
        for item in new:  # 3. owner nudges go to the owner of the moment
            who = item.payload["recipient"]
            if who["role"] == "owner" and item.kind in NUDGES - {REASSIGNED}:
                assert who["owner_id"] == lead.owner_id, (item.kind, who, lead.owner_id)

    def _act(self, do: Any) -> None:
        lead = self._lead()
        ref = LeadRef(lead.id or 0, lead.state.button_version)
        try:
            do(ref)
        except ActionRefused:
            return
        self.h.tick()
        self._check_tick()

    # --- what happens to a lead -----------------------------------------------------------------

    @rule(minutes=st.sampled_from([1, 3, 7, 20, 90, 600, 2 * 1440]))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))
        due = [e for e in self.echoes if e[0] <= self.clock.now()]
        self.echoes = [e for e in self.echoes if e[0] > self.clock.now()]
        if due and not self.deleted:  # HubSpot echoes touches logged in Slack, late
            events = []
            for _, at in due:
                self.count += 1
                events += [self._prop("notes_last_contacted", at.isoformat())]
                events += [self._prop("num_contacted_notes", self.count)]
            self._send(*events)
        else:
            self.h.tick()
            self._check_tick()

    @precondition(lambda self: not self.deleted)
    @rule(owner=st.sampled_from(OWNERS))
    def owner_changes_in_hubspot(self, owner: str) -> None:
        if owner != self.owner and self.owner is not None and self._lead().owner_id is not None:
            self.person_moves.append(self.clock.now())
        self.owner = owner
        self._send(self._prop("hubspot_owner_id", owner))

    @precondition(lambda self: not self.deleted)
    @rule()
    def touch_in_hubspot(self) -> None:
        self.count += 1
        self.fed += 1
        now = self.clock.now().isoformat()
        self._send(
            self._prop("notes_last_contacted", now), self._prop("num_contacted_notes", self.count)
        )

    @precondition(lambda self: not self.deleted)
    @rule(delay=st.sampled_from([2, 90, 600]), connect=st.booleans())
    def touch_logged_in_slack(self, delay: int, connect: bool) -> None:
        before = len(self._lead().touches)
        at = self.clock.now()

        def log(ref: LeadRef) -> None:
            actions.log_touch(
                self.engine,
                ref,
                by="U1",
                at=at,
                kind="call",
                outcome="connect" if connect else "attempt",
                note="",
            )

        self._act(log)
        if len(self._lead().touches) > before:
            self.fed += 1
            self.echoes.append((at + timedelta(minutes=delay), at))

    def _hold(self, reason: str, on: bool) -> None:
        was = bool(self.held)
        (self.held.add if on else self.held.discard)(reason)
        if was and not self.held:  # rows decided from here on come after the resume
            self.resumes.append((self.clock.now(), max((r.id for r in self._rows()), default=0)))

    @precondition(lambda self: not self.deleted)
    @rule(status=st.sampled_from(["CONNECTED", "BAD_TIMING", "OPEN", "UNQUALIFIED"]))
    def lead_status(self, status: str) -> None:
        self._hold("paused", status == "BAD_TIMING")
        self._hold("disqualified", status == "UNQUALIFIED")
        self._send(self._prop("hs_lead_status", status))

    @precondition(lambda self: not self.deleted)
    @rule(stage=st.sampled_from(["opportunity", "lead"]))
    def lifecycle(self, stage: str) -> None:
        self._hold("stopped", stage == "opportunity")
        self._send(self._prop("lifecyclestage", stage))

    @precondition(lambda self: not self.deleted)
    @rule(hours=st.sampled_from([1, 5]))
    def snooze(self, hours: int) -> None:
        now = self.clock.now()
        self._act(
            lambda ref: actions.snooze(
                self.engine, ref, by="U1", until=now + timedelta(hours=hours), now=now
            )
        )

    @precondition(lambda self: not self.deleted)
    @rule()
    def on_it(self) -> None:
        now = self.clock.now()
        self._act(
            lambda ref: actions.acknowledge(
                self.engine, ref, by="U1", now=now, silence=timedelta(minutes=30)
            )
        )

    @precondition(lambda self: not self.deleted and self.last_batch)
    @rule()
    def hubspot_delivers_again(self) -> None:
        self.h.webhook(*self.last_batch)  # a retry of the same batch: nothing twice
        self.h.tick()
        self._check_tick()

    @precondition(lambda self: not self.deleted)
    @rule()
    def an_old_value_arrives_late(self) -> None:
        old = prop(1, T0, "hs_lead_status", "NEW", 10_000 + self.n)
        self.n += 1
        self.h.webhook(old)  # older than anything applied: stale
        self.h.tick()
        self._check_tick()

    @precondition(lambda self: not self.deleted)
    @rule()
    def deleted_in_hubspot(self) -> None:
        self.deleted = True
        self._send({"subscriptionType": "contact.deletion"})

    # --- invariants after every step -------------------------------------------------------------

    @invariant()
    def one_live_row_per_occurrence_and_recipient(self) -> None:
        seen: set[tuple[str, str, str]] = set()
        for r in self._rows():
            if r.status == "cancelled" or r.channel != "slack":
                continue
            key = (r.step or r.idempotency_key, r.kind, r.recipient or "")
            assert key not in seen, key
            seen.add(key)

    @invariant()
    def no_round_robin_over_a_persons_choice(self) -> None:
        lead = self._lead()
        start = lead.clock_started_at
        for record in lead.state.owners:
            if record.by == "sla-bot" and start is not None:
                assert not [t for t in self.person_moves if start <= t <= record.at], record

    @invariant()
    def nothing_due_before_a_resume_is_sent_after_it(self) -> None:
        if not self.resumes:
            return
        for r in self._rows():
            if r.channel != "slack" or r.status == "cancelled" or r.kind == REASSIGNED:
                continue
            resumed = [t for t, last_row in self.resumes if r.id > last_row]
            if resumed and r.due_at is not None and r.kind in NUDGES:
                assert r.due_at >= resumed[-1], (r.step, r.due_at, resumed[-1])

    @invariant()
    def touches_counted_once(self) -> None:
        if self.deleted or self.echoes:
            return  # an echo in flight is a touch not yet confirmed, already counted
        assert len(self._lead().touches) == self.fed, [
            (t.at.isoformat(), t.signals) for t in self._lead().touches
        ]


LeadLife.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestLeadLife = LeadLife.TestCase


def test_the_machine_starts_from_a_routed_lead() -> None:
    machine = LeadLife()
    try:
        lead = machine._lead()
        assert lead.policy == "inbound_demo" and lead.owner_id == "1001"
        assert (
            json.loads(json.dumps(machine.h.rows("slack")[0]["payload"]))["kind"] == "lead.assigned"
        )
        assert lead.portal_id == PORTAL and to_epoch_ms(T0) > 0
    finally:
        machine.teardown()
