"""The timeline over a lead's history: held time, occurrences, the first message, calendars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sla_bot.rules.steps import History, OwnerChange
from sla_bot.rules.timeline import CANCELLED, FIRED, PAUSED, PENDING, Touch, build_timeline
from tests.rules.util import BASE, LEAD, POLICY, rules_from

T0 = datetime(2027, 1, 19, 15, 0, tzinfo=UTC)  # Tuesday 10:00 in New York
M = timedelta(minutes=1)
WALL = """\
calendars:
  always: {timezone: UTC, hours: 24/7}
teams:
  t:
    calendar: always
    channel: "#t"
    managers: [{name: Mia, slack: U0MIA0001}]
    members:
      - {name: Alex, owner_id: "1", slack: U0ALEX001}
      - {name: Blair, owner_id: "2", slack: U0BLAIR01}
policies:
  p:
    team: t
    first_touch: {within: 10m, warning: 80%}
    cadence: {min_touches: 3, within: 10d, max_gap: 1d}
    touches: {connected_when: {hs_lead_status: CONNECTED}}
    stop_when: {lifecyclestage: opportunity}
    pause: {when: {hs_lead_status: BAD_TIMING}, resume_property: follow_up}
    premature_disqualification: {when: {hs_lead_status: UNQUALIFIED}, do: [notify_manager]}
    escalation:
      - {after: 0m, do: [notify_owner]}
      - {after: 10m, do: [notify_manager]}
      - {after: 20m, do: [reassign, notify_owner]}
routing:
  all: {leads: [], fallback: p}
"""
PROPS = {"createdate": T0.isoformat(), "hubspot_owner_id": "1"}


def history(*changes: tuple[datetime, str, object]) -> History:
    """Property history: the lead's creation values at T0, then (time, name, value) changes."""
    values: dict[str, list[tuple[datetime, object]]] = {k: [(T0, v)] for k, v in PROPS.items()}
    for at, name, value in changes:
        values.setdefault(name, []).append((at, value))
    return History(values, (OwnerChange(T0, "1"),))


def states(tl) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {s.key: (s.state, s.due_at.strftime("%H:%M")) for s in tl.steps}


def test_a_pause_that_ends_moves_every_later_deadline_by_its_length(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, WALL)
    past = history(
        (T0 + 3 * M, "hs_lead_status", "BAD_TIMING"), (T0 + 63 * M, "hs_lead_status", "OPEN")
    )
    tl = build_timeline(rules, 1, PROPS, now=T0 + 65 * M, history=past)
    got = states(tl)
    # 5 of the 8 warning minutes were left at 15:03; the pause took an hour.
    assert got["first_touch.warning"] == (PENDING, "16:08")
    assert got["first_touch.breach"] == (PENDING, "16:10")
    assert got["ladder.2"] == (PENDING, "16:20")
    assert [h.to_dict()["why"] for h in tl.holds] == [
        "paused: hs_lead_status == BAD_TIMING (value: 'BAD_TIMING')"
    ]
    assert tl.status == "awaiting_first_touch"


def test_an_open_pause_holds_everything_from_its_start(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, WALL)
    paused = history((T0 + 3 * M, "hs_lead_status", "BAD_TIMING"))
    tl = build_timeline(rules, 1, PROPS, now=T0 + 30 * M, history=paused)
    assert {k: v[0] for k, v in states(tl).items() if not k.startswith("lead.")} == {
        k: PAUSED for k in states(tl) if not k.startswith("lead.")
    }
    assert tl.status == "paused"


def test_a_stop_that_clears_resumes_the_ladder_where_it_stood(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, WALL)
    past = history(
        (T0 + 12 * M, "lifecyclestage", "opportunity"), (T0 + 112 * M, "lifecyclestage", "lead")
    )
    tl = build_timeline(rules, 1, PROPS, now=T0 + 115 * M, history=past)
    got = states(tl)
    assert got["ladder.1"] == (FIRED, "15:10")  # due before the stop
    assert got["ladder.2"] == (PENDING, "17:00")  # 8 of its 10 minutes were left at 15:12
    stopped = build_timeline(rules, 1, PROPS, now=T0 + 50 * M, history=past)
    assert stopped.status == "stopped" and stopped.step("ladder.2").state == CANCELLED


def test_the_follow_up_nudge_is_due_at_its_date_and_stays_due_after_it(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, WALL)
    date = T0 + timedelta(days=3)
    past = history(
        (T0 + 2 * M, "follow_up", date.isoformat()), (T0 + 2 * M, "hs_lead_status", "BAD_TIMING")
    )
    touches = [Touch(T0 + M)]
    for now in (date - M, date, date + timedelta(hours=5)):
        tl = build_timeline(rules, 1, PROPS, touches=touches, now=now, history=past)
        step = tl.step("pause.resume@20270122T150000Z")
        assert step.due_at == date and step.state == (FIRED if now >= date else PENDING)
    # The cadence restarts at the date: touch 2 is due within max_gap of it, a new occurrence.
    assert tl.step("cadence.touch2.due@20270122T150000Z").due_at == date + timedelta(days=1)


def test_each_disqualification_is_its_own_occurrence(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, WALL)
    past = history(
        (T0 + 20 * M, "hs_lead_status", "UNQUALIFIED"),
        (T0 + 30 * M, "hs_lead_status", "OPEN"),
        (T0 + 50 * M, "hs_lead_status", "UNQUALIFIED"),
    )
    tl = build_timeline(rules, 1, PROPS, touches=[Touch(T0 + M)], now=T0 + 60 * M, history=past)
    dq = [s for s in tl.steps if s.kind == "disqualification.premature"]
    assert [(s.key, s.state) for s in dq] == [
        ("disqualification.premature@20270119T152000Z", FIRED),
        ("disqualification.premature@20270119T155000Z", FIRED),
    ]
    assert dq[1].detail["previous"] == {"hs_lead_status": "OPEN"}
    assert tl.status == "disqualified"


def test_the_owner_hears_of_a_new_lead_at_once_and_of_a_hubspot_reassignment(
    tmp_path: Path,
) -> None:
    rules = rules_from(tmp_path, WALL)
    tl = build_timeline(rules, 1, PROPS, now=T0, history=history())
    first = tl.step("lead.assigned@20270119T150000Z")
    assert first.state == FIRED and [r.slack for r in first.recipients] == ["U0ALEX001"]
    assert first.detail["deadline"] == (T0 + 10 * M).isoformat()
    moved = History(history().values, (OwnerChange(T0, "1"), OwnerChange(T0 + 5 * M, "2")))
    tl = build_timeline(rules, 1, dict(PROPS, hubspot_owner_id="2"), now=T0 + 5 * M, history=moved)
    assert [s.key for s in tl.steps if s.kind == "lead.assigned"] == [
        "lead.assigned@20270119T150500Z"
    ]
    by_bot = History(
        history().values, (OwnerChange(T0, "1"), OwnerChange(T0 + 5 * M, "2", "sla-bot"))
    )
    tl = build_timeline(rules, 1, dict(PROPS, hubspot_owner_id="2"), now=T0 + 5 * M, history=by_bot)
    assert not any(s.kind == "lead.assigned" for s in tl.steps)  # "reassigned" tells them
    quiet = rules_from(
        tmp_path / "off", WALL.replace("first_touch: {", "first_touch: {on_assignment: [], ")
    )
    assert not any(s.kind == "lead.assigned" for s in build_timeline(quiet, 1, PROPS).steps)


def test_holidays_follow_the_lead_not_the_year_it_is_looked_at(tmp_path: Path) -> None:
    policy = POLICY.replace("30 business minutes", "3 business days")
    rules = rules_from(
        tmp_path, BASE, policy.replace("after: 1 business hour", "after: 4 business days")
    )
    lead = dict(LEAD, createdate="2025-12-23T20:00:00Z")  # Tue 15:00 in New York
    for now in (None, datetime(2027, 6, 1, tzinfo=UTC)):
        tl = build_timeline(rules, 1, lead, now=now)
        # Christmas 2025 is closed: Tue 3h + Wed 10h + Fri 10h + Mon 7h = Mon 12-29 15:00.
        assert tl.step("first_touch.breach").due_at.isoformat() == "2025-12-29T20:00:00+00:00"


def test_a_pinned_calendar_keeps_the_deadline_when_the_owner_moves_zone(tmp_path: Path) -> None:
    moved = rules_from(
        tmp_path,
        BASE.replace(
            'owner_id: "101", email: alex@example.com,',
            'owner_id: "101", email: alex@example.com, timezone: America/Los_Angeles,',
        ),
        POLICY,
    )
    unpinned = build_timeline(moved, 1, LEAD)
    pinned = build_timeline(moved, 1, LEAD, history=History(calendar=("ny", None)))
    assert unpinned.timezone == "America/Los_Angeles"
    assert pinned.timezone == "America/New_York"
    assert pinned.step("first_touch.breach").due_at.isoformat() == "2027-01-19T13:25:00+00:00"
