"""Outcome facts are recorded as the engine decides: speed, met/breached, touches, outcomes."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine

from sla_bot.clock import FrozenClock
from sla_bot.engine.outcomes import BREACHES, ESCALATIONS, FIRST_TOUCHES, OUTCOMES
from tests.conftest import T0
from tests.engine.harness import Harness, ev, prop
from tests.engine.test_events import PROPS
from tests.outcomes.util import contact, counters, events, facts

M = timedelta(minutes=1)
POLICY = (("policy", "inbound_demo"),)


def test_a_late_first_touch_is_a_breach_with_its_speed_and_the_rep_at_the_deadline(
    engine: Engine, clock: FrozenClock
) -> None:
    h = Harness(engine, clock)
    h.webhook(contact(1, {**PROPS, "firstname": "Dana", "hs_analytics_source": "PAID_SEARCH"}))
    h.at(T0)
    f = facts(engine, 1)
    assert (f["result"], f["first_touch_at"], f["due_at"]) == (None, None, T0 + 5 * M)
    assert (f["name"], f["source"], f["owner_id"], f["outcome"]) == (
        "Dana",
        "PAID_SEARCH",
        "1001",
        "open",
    )
    h.at(T0 + 5 * M)  # breach; ladder.1 (after 0m) tells Alex
    f = facts(engine, 1)
    assert (f["result"], f["owner_id"], f["escalations"], f["escalation_level"]) == (
        "breached",
        "1001",
        1,
        1,
    )
    h.webhook(prop(1, T0 + 12 * M, "num_contacted_notes", 1, n=1))
    h.at(T0 + 12 * M)
    f = facts(engine, 1)
    assert f["first_touch_at"] == T0 + 12 * M and f["first_touch_owner_id"] == "1001"
    assert (f["business_seconds"], f["wall_seconds"], f["late_by_seconds"]) == (720, 720, 420)
    assert (f["result"], f["touches"], f["backfilled"]) == ("breached", 1, 0)
    assert events(engine, 1) == [
        ("breach", "first_touch.breach"),
        ("escalation", "ladder.1"),
        ("touch", f"touch@{(T0 + 12 * M).isoformat()}"),
    ]
    got = counters(engine)
    assert got[(BREACHES, POLICY)] == 1
    assert got[(ESCALATIONS, (("policy", "inbound_demo"), ("step", "ladder.1")))] == 1
    assert got[(FIRST_TOUCHES, (("policy", "inbound_demo"), ("result", "late")))] == 1
    # Deciding again (nothing new) changes no fact and counts nothing twice.
    h.at(T0 + 13 * M)
    assert counters(engine) == got


def test_a_touch_in_time_is_met_and_belongs_to_whoever_made_it(
    engine: Engine, clock: FrozenClock
) -> None:
    h = Harness(engine, clock)
    h.webhook(contact(2, PROPS))
    h.at(T0)
    h.webhook(prop(2, T0 + 3 * M, "num_contacted_notes", 1, n=1))
    h.at(T0 + 3 * M)
    f = facts(engine, 2)
    assert (f["result"], f["business_seconds"], f["wall_seconds"], f["owner_id"]) == (
        "met",
        180,
        180,
        "1001",
    )
    assert f["late_by_seconds"] is None and f["escalations"] == 0
    assert counters(engine)[(FIRST_TOUCHES, (("policy", "inbound_demo"), ("result", "met")))] == 1


def test_premature_disqualification_and_deletion_are_outcomes(
    engine: Engine, clock: FrozenClock
) -> None:
    h = Harness(engine, clock)
    h.webhook(contact(3, PROPS), contact(4, PROPS))
    h.at(T0)
    h.webhook(prop(3, T0 + 2 * M, "num_contacted_notes", 1, n=1))
    h.webhook(prop(3, T0 + 4 * M, "hs_lead_status", "UNQUALIFIED", n=2))
    h.at(T0 + 4 * M)
    f = facts(engine, 3)
    assert (f["outcome"], f["outcome_at"], f["touches_before_outcome"]) == (
        "disqualified",
        T0 + 4 * M,
        1,
    )
    assert f["outcome_reason"].startswith("premature: ") and f["premature_dq"] == 1
    assert f["min_touches"] == 8
    assert ("premature_dq", "disqualification.premature@20261120T150400Z") in events(engine, 3)
    h.webhook(ev("contact.deletion", 4, T0 + 6 * M, n=3))
    h.at(T0 + 6 * M)
    f = facts(engine, 4)
    assert (f["outcome"], f["outcome_at"], f["result"]) == ("deleted", T0 + 6 * M, None)
    got = counters(engine)
    assert got[(OUTCOMES, (("outcome", "disqualified"), ("policy", "inbound_demo")))] == 1
    assert got[(OUTCOMES, (("outcome", "deleted"), ("policy", "inbound_demo")))] == 1


def test_nul_characters_in_crm_text_are_stored_as_replacement_characters(
    engine: Engine, clock: FrozenClock
) -> None:
    """PostgreSQL text cannot hold NUL; a contact whose CRM text carries one (HubSpot passes
    "\\u0000" through) must still become a lead with its facts, on every database alike."""
    h = Harness(engine, clock)
    props = {**PROPS, "firstname": "Da\x00na", "hs_analytics_source": "PAID\x00SEARCH"}
    props["hubspot_owner_id"] = "10\x0001"
    h.webhook(contact(1, props))
    h.at(T0)
    f = facts(engine, 1)
    assert (f["name"], f["source"], f["outcome"]) == ("Da\ufffdna", "PAID\ufffdSEARCH", "open")
