"""Real leads are messy: pauses, owner changes, occurrences, late echoes (regression tests).

Each test is one defect seen on the engine before step occurrences, held time and pending rows
that follow the lead; each runs on SQLite and PostgreSQL through the real apply, sweep and outbox.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from sla_bot.cli import main
from sla_bot.clock import FrozenClock
from sla_bot.engine import actions
from sla_bot.engine.actions import LeadRef
from sla_bot.engine.audit import history
from sla_bot.lead_show import describe
from sla_bot.rules import RulesHolder
from tests.conftest import T0
from tests.engine.harness import RULES, Harness, load_rules, prop
from tests.engine.test_events import PROPS, _sync

M, H, D = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


def sent(h: Harness, kind: str | None = None) -> list[tuple[str, str, str]]:
    """(kind, step, recipient owner id or name) of every Slack message delivered so far."""
    out = []
    for item in h.slack.sent:
        who = item.payload["recipient"]
        out.append((item.kind, item.payload["step_key"], who.get("owner_id") or who["name"]))
    return [s for s in out if kind is None or s[0] == kind]


def rules_with(tmp_path: Path, *edits: tuple[str, str]) -> Harness:
    text = (RULES / "default.yaml").read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "default.yaml").write_text(text)
    return load_rules(tmp_path / "rules")  # type: ignore[return-value]


def test_no_burst_after_a_pause_and_no_reassignment_over_a_managers_choice(
    engine: Engine, clock: FrozenClock
) -> None:
    h = Harness(engine, clock)
    h.webhook(_sync(1, PROPS))
    h.at(T0)
    h.at(T0 + 4 * M)  # the warning
    h.webhook(prop(1, T0 + 4 * M + timedelta(seconds=30), "hs_lead_status", "BAD_TIMING"))
    h.at(T0 + 4 * M + timedelta(seconds=30))
    before = len(h.slack.sent)
    for hour in range(1, 6):  # paused for hours: everything that "falls due" is held
        h.at(T0 + hour * H)
    assert len(h.slack.sent) == before
    h.webhook(prop(1, T0 + 5 * H, "hubspot_owner_id", "1003", n=1))  # a manager's choice
    h.webhook(prop(1, T0 + 5 * H, "hs_lead_status", "OPEN", n=2))
    h.at(T0 + 5 * H)
    resumed = h.slack.sent[before:]
    # Casey is told the lead is theirs; nothing else: the ladder resumes where it stood.
    assert [(i.kind, i.payload["recipient"]["owner_id"]) for i in resumed] == [
        ("lead.assigned", "1003")
    ]
    lead = h.lead(1)
    # 30 s of the 5 business minutes were left at the pause: the breach is 30 s after resuming.
    assert lead.next_due_at == T0 + 5 * H + timedelta(seconds=30)
    for minutes in (1, 11, 21, 31):
        h.at(T0 + 5 * H + minutes * M)
    assert lead.owner_id == "1003" == h.lead(1).owner_id  # round robin did not override it
    assert h.rows("slack", kind="reassigned") == []
    steps = [s for _, s, _ in sent(h)]
    assert steps.count("ladder.1") == 1 and "ladder.4" in steps
    with engine.connect() as conn:
        skipped = [e for e in history(conn, lead.id or 0) if e["kind"] == "reassign.skipped"]
    assert skipped and "a person chose" in skipped[0]["detail"]["why"]


def test_the_follow_up_date_nudge_fires_on_its_date(engine: Engine, clock: FrozenClock) -> None:
    h = Harness(engine, clock)
    h.webhook(_sync(1, PROPS))
    h.at(T0)
    h.webhook(prop(1, T0 + M, "num_contacted_notes", 1))
    h.at(T0 + M)
    follow_up = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)  # Wednesday 09:00 in New York
    h.webhook(prop(1, T0 + 2 * M, "follow_up_date", follow_up.isoformat(), n=1))
    h.webhook(prop(1, T0 + 2 * M, "hs_lead_status", "BAD_TIMING", n=2))
    h.at(T0 + 2 * M)
    assert h.lead(1).next_due_at == follow_up  # the sweep wakes exactly at the date...
    h.at(follow_up)
    assert sent(h, "pause.resume") == [("pause.resume", "pause.resume@20261125T140000Z", "1001")]
    # ...and the cadence restarts there: touch 2 is due within 2 business days (20 h) of it:
    # Wednesday 9 h, Thanksgiving closed, Friday 10 h, Monday 1 h.
    assert h.lead(1).next_due_at == datetime(2026, 11, 30, 14, 0, tzinfo=UTC)


def test_a_restarted_cadence_nudges_again_and_a_second_disqualification_counts(
    engine: Engine, clock: FrozenClock, tmp_path: Path
) -> None:
    loaded = rules_with(tmp_path, ("revert: false", "revert: true"))
    h = Harness(engine, clock, loaded)
    h.webhook(_sync(1, PROPS))
    h.at(T0)
    h.webhook(prop(1, T0 + M, "num_contacted_notes", 1))
    h.at(T0 + M)
    gap = datetime(2026, 11, 24, 15, 1, tzinfo=UTC)  # touch 2 within 2 business days
    h.at(gap)
    assert sent(h, "cadence.due") == [("cadence.due", "cadence.touch2.due", "1001")]
    follow_up = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    h.webhook(prop(1, gap + M, "follow_up_date", follow_up.isoformat(), n=1))
    h.webhook(prop(1, gap + M, "hs_lead_status", "BAD_TIMING", n=2))
    h.at(gap + M)
    h.at(follow_up)
    h.at(datetime(2026, 12, 2, 14, 0, tzinfo=UTC))  # 2 business days after the follow-up
    assert [s for _, s, _ in sent(h, "cadence.due")] == [
        "cadence.touch2.due",
        "cadence.touch2.due@20261130T140000Z",  # a new occurrence, not a dropped repeat
    ]
    # Disqualified twice with too few touches: each time flagged and reverted.
    t = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    h.webhook(prop(1, t, "hs_lead_status", "UNQUALIFIED", n=3))
    h.at(t)
    h.webhook(prop(1, t + H, "hs_lead_status", "OPEN", n=4))  # HubSpot echoes our revert
    h.at(t + H)
    h.webhook(prop(1, t + 2 * H, "hs_lead_status", "UNQUALIFIED", n=5))
    h.at(t + 2 * H)
    flagged = sorted({s for _, s, _ in sent(h, "disqualification.premature")})
    assert flagged == [
        "disqualification.premature@20261202T150000Z",
        "disqualification.premature@20261202T170000Z",
    ]
    reverts = [
        r["payload"]["properties"]
        for r in h.rows("hubspot", kind="update_contact")
        if r["step"].startswith("disqualification")
    ]
    assert reverts == [{"hs_lead_status": "BAD_TIMING"}, {"hs_lead_status": "OPEN"}]


def test_held_cadence_nudges_are_withdrawn_by_a_connect_every_time(
    engine: Engine, clock: FrozenClock
) -> None:
    h = Harness(engine, clock)
    h.webhook(_sync(1, PROPS))
    h.at(T0)
    h.webhook(prop(1, T0 + M, "num_contacted_notes", 1))
    h.at(T0 + M)
    h.webhook(prop(1, T0 + H, "num_contacted_notes", 2, n=1))  # gap 2 met in time
    h.at(T0 + H)
    due3 = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
    h.at(due3 - H)
    lead = h.lead(1)
    ref = LeadRef(lead.id or 0, lead.state.button_version)
    actions.snooze(engine, ref, by="U1", until=due3 + 3 * H, now=due3 - H)  # hold owner DMs
    h.at(due3)
    (held,) = h.rows("slack", step="cadence.touch3.due")
    assert (held["status"], held["next_attempt_at"]) == ("pending", due3 + 3 * H)
    h.webhook(prop(1, due3 + M, "hs_lead_status", "CONNECTED", n=2))
    h.at(due3 + M)
    (held,) = h.rows("slack", step="cadence.touch3.due")
    assert held["status"] == "cancelled" and "connected" in held["error"]
    h.at(due3 + 2 * D)
    assert sent(h, "cadence.due") == []  # nothing reached the connected lead


def test_a_held_dm_follows_the_owner_with_fresh_buttons(engine: Engine, clock: FrozenClock) -> None:
    h = Harness(engine, clock)
    h.webhook(_sync(1, PROPS))
    h.at(T0)
    lead = h.lead(1)
    actions.snooze(
        engine, LeadRef(lead.id or 0, lead.state.button_version), by="U1", until=T0 + H, now=T0
    )
    h.at(T0 + 4 * M)  # the warning, held by the snooze
    (held,) = h.rows("slack", kind="first_touch.warning")
    assert held["next_attempt_at"] == T0 + H
    h.webhook(prop(1, T0 + 4 * M + timedelta(seconds=10), "hubspot_owner_id", "1002"))
    h.at(T0 + 4 * M + timedelta(seconds=10))
    rows = h.rows("slack", kind="first_touch.warning")
    assert [(r["status"], r["payload"]["recipient"]["owner_id"]) for r in rows] == [
        ("cancelled", "1001"),
        ("sent", "1002"),  # the snooze was Alex's: Blair gets it now
    ]
    assert rows[1]["payload"]["lead"]["version"] == h.lead(1).state.button_version


def test_a_touch_logged_in_slack_counts_once_when_hubspot_echoes_it_hours_later(
    engine: Engine, clock: FrozenClock
) -> None:
    h = Harness(engine, clock)
    h.webhook(_sync(1, PROPS))
    h.at(T0 + M)
    lead = h.lead(1)
    ref = LeadRef(lead.id or 0, lead.state.button_version)
    actions.log_touch(engine, ref, by="U1", at=T0 + 2 * M, kind="call", outcome="attempt", note="")
    h.at(T0 + 2 * M)
    echo = T0 + 5 * H  # the write-back waited out an outage
    h.webhook(prop(1, echo, "num_contacted_notes", 1))
    h.webhook(prop(1, echo, "notes_last_contacted", (T0 + 2 * M).isoformat(), n=1))
    h.at(echo)
    assert len(h.lead(1).touches) == 1


def test_holidays_of_an_old_lead_follow_its_own_year(engine: Engine, clock: FrozenClock) -> None:
    created = datetime(2025, 12, 23, 20, 0, tzinfo=UTC)  # Tuesday 15:00 in New York
    clock.set(created)
    h = Harness(engine, clock)
    h.webhook(_sync(1, {**PROPS, "createdate": created.isoformat()}, at=created))
    h.tick()
    holder = RulesHolder(RULES)
    holder.reload_if_changed()
    lead = h.lead(1)
    later = datetime(2027, 6, 1, tzinfo=UTC)
    report = describe(lead, [], holder, later)
    due = {s["key"]: s["due_at"] for s in report["timeline"]["steps"]}
    # 10 business days of 10 h from Tuesday 15:00, Christmas 2025 and New Year closed:
    # 3 + 10 (Wed) + 10 (Fri) + 30 (Mon-Wed) + 40 (Fri, Mon-Wed) + 7 (Thu) = Thu 01-08 15:00.
    assert due["first_touch.breach"] == "2025-12-23T20:05:00+00:00"
    assert due["cadence.end"] == "2026-01-08T20:00:00+00:00"


def test_the_owner_hears_of_the_lead_at_once(engine: Engine, clock: FrozenClock) -> None:
    h = Harness(engine, clock)
    h.webhook(_sync(1, {**PROPS, "firstname": "Ann"}))
    h.at(T0)
    assert sent(h) == [("lead.assigned", "lead.assigned@20261120T150000Z", "1001")]
    (item,) = h.slack.sent
    assert item.payload["deadline"] == (T0 + 5 * M).isoformat()
    assert item.payload["text"] == "Ann is yours: a new lead needs a first touch"


def test_simulate_and_lead_show_agree_with_what_the_engine_did(
    engine: Engine, clock: FrozenClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = Harness(engine, clock)
    h.webhook(_sync(1, PROPS))
    for minute in (0, 4, 5):
        h.at(T0 + minute * M)
    h.webhook(prop(1, T0 + 6 * M, "hs_lead_status", "BAD_TIMING"))  # paused after the breach
    h.at(T0 + 6 * M)
    h.webhook(prop(1, T0 + 3 * H, "hs_lead_status", "OPEN", n=1))
    for minutes in (180, 181, 200, 260):
        h.at(T0 + minutes * M)
    h.webhook(prop(1, T0 + 5 * H, "num_contacted_notes", 1, n=2))
    h.webhook(prop(1, T0 + 6 * H, "hs_lead_status", "UNQUALIFIED", n=3))
    h.at(T0 + 6 * H)
    now = T0 + 6 * H + M
    h.at(now)
    holder = RulesHolder(RULES)
    holder.reload_if_changed()
    shown = describe(h.lead(1), [], holder, now)
    lead_file = tmp_path / "lead.json"
    lead_file.write_text(json.dumps(shown, default=str))  # `lead show --json` output, as is
    args = ["rules", "simulate", "--lead", str(lead_file), "--at", now.isoformat(), "--json"]
    assert main([*args, "--dir", str(RULES)]) == 0
    simulated = json.loads(capsys.readouterr().out)

    def steps(tl: dict) -> list[tuple[str, str, str]]:
        return [(s["key"], s["due_at"], s["state"]) for s in tl["steps"]]

    assert steps(simulated) == steps(shown["timeline"])
    live = {r["step"] for r in h.rows("slack") if r["status"] != "cancelled"}
    for step in shown["timeline"]["steps"]:
        if step["outcome"] == "sent" and step["recipients"]:
            assert step["key"] in live, step["key"]
        elif step["key"] in live:
            raise AssertionError(f"{step['key']} was sent but shows {step['outcome']}")
    outcomes = {s["key"]: s["outcome"] for s in shown["timeline"]["steps"]}
    assert outcomes["ladder.1"] == "sent"
    assert outcomes["ladder.2"].startswith("sent") or outcomes["ladder.2"] == "cancelled"
    assert outcomes["disqualification.premature@20261120T210000Z"] == "sent"
