"""build_timeline: deadlines, ladder, cadence and conditions for one lead, with exact times."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sla_bot.rules.people import NEW_OWNER
from sla_bot.rules.timeline import CANCELLED, FIRED, PAUSED, PENDING, Touch, build_timeline
from tests.rules.util import BASE, LEAD, POLICY, rules_from


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def dues(tl) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {s.key: s.due_at.strftime("%Y-%m-%dT%H:%MZ") for s in tl.steps}


def test_acceptance_friday_evening_lead_is_due_tuesday_0825_after_mlk_day(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, BASE, POLICY)
    tl = build_timeline(rules, 1, LEAD)
    assert tl.policy == "demo"
    assert tl.calendar_name == "ny" and tl.timezone == "America/New_York"
    breach = tl.step("first_touch.breach").due_at
    assert breach == utc("2027-01-19T13:25:00Z")
    assert breach.astimezone(rules.calendar("ny", year=2027).tz).strftime("%a %H:%M") == "Tue 08:25"


def test_ladder_keys_offsets_and_repeats(tmp_path: Path) -> None:
    tl = build_timeline(rules_from(tmp_path, BASE, POLICY), 1, LEAD)
    assert dues(tl) == {
        "lead.assigned@20270115T225500Z": "2027-01-15T22:55Z",  # the owner hears at once
        "first_touch.warning": "2027-01-19T13:19Z",  # 80% of 30 = 24 business minutes
        "first_touch.breach": "2027-01-19T13:25Z",
        "ladder.1": "2027-01-19T13:25Z",
        "ladder.2": "2027-01-19T13:40Z",
        "ladder.3": "2027-01-19T13:55Z",
        "ladder.4": "2027-01-19T14:25Z",
        "ladder.4#r1": "2027-01-19T15:25Z",
        "ladder.4#r2": "2027-01-19T16:25Z",
    }
    assert [s.key for s in tl.steps][1:3] == ["first_touch.warning", "first_touch.breach"]
    assert all(s.state == FIRED for s in tl.steps)
    assert tl.status == "breached"


def test_who_is_told(tmp_path: Path) -> None:
    tl = build_timeline(rules_from(tmp_path, BASE, POLICY), 1, LEAD)
    owner = tl.step("ladder.1").recipients[0]
    assert (owner.role, owner.name, owner.slack, owner.owner_id) == (
        "owner",
        "Alex",
        "U0ALEX00",
        "101",
    )
    manager = tl.step("ladder.2").recipients[0]
    assert (manager.role, manager.name, manager.slack) == ("manager", "Mia Manager", "U0MANAGER")
    reassign = tl.step("ladder.3")
    assert reassign.actions == ("reassign", "notify_owner")
    assert reassign.detail["candidates"] == ["Blair"]
    assert reassign.detail["skipped"] == {"Casey": "out of office until 2027-01-31"}
    assert [r.name for r in reassign.recipients] == [NEW_OWNER]
    channel = tl.step("ladder.4#r2").recipients[0]
    assert (channel.role, channel.name) == ("channel", "#sales")


def test_touch_in_time_cancels_breach_and_ladder(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, BASE, POLICY)
    tl = build_timeline(rules, 1, LEAD, touches=[Touch(utc("2027-01-19T13:20:00Z"))])
    states = {s.key: s.state for s in tl.steps}
    assert states["first_touch.warning"] == states["lead.assigned@20270115T225500Z"] == FIRED
    assert {states[k] for k in states if k.startswith(("first_touch.b", "ladder"))} == {CANCELLED}
    assert tl.step("ladder.1").why == "first touch at 2027-01-19T13:20:00+00:00"
    assert tl.status == "touched"


def test_late_touch_stops_the_rest_of_the_ladder(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, BASE, POLICY)
    tl = build_timeline(rules, 1, LEAD, touches=[Touch(utc("2027-01-19T13:45:00Z"))])
    states = {s.key: s.state for s in tl.steps}
    assert states["first_touch.breach"] == states["ladder.1"] == states["ladder.2"] == FIRED
    assert states["ladder.3"] == states["ladder.4"] == CANCELLED
    assert tl.step("first_touch.breach").detail["late_by_seconds"] == 20 * 60


def test_now_splits_fired_from_pending_and_ignores_later_touches(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, BASE, POLICY)
    later = [Touch(utc("2027-01-19T15:00:00Z"))]
    tl = build_timeline(rules, 1, LEAD, touches=later, now=utc("2027-01-19T13:30:00Z"))
    states = {s.key: s.state for s in tl.steps}
    assert states["ladder.1"] == FIRED and states["ladder.2"] == PENDING
    assert tl.touches == ()


def test_after_hours_lead_starts_its_business_clock_at_next_opening(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, BASE, POLICY)
    saturday = dict(LEAD, createdate="2027-01-16T15:00:00Z")
    tl = build_timeline(rules, 1, saturday)
    assert tl.business_start == utc("2027-01-19T13:00:00Z")  # Tuesday 08:00, Monday is MLK Day
    assert tl.step("first_touch.breach").due_at == utc("2027-01-19T13:30:00Z")


def test_wall_clock_target_ignores_the_calendar(tmp_path: Path) -> None:
    policy = POLICY.replace("30 business minutes, warning: 80%", "30m, warning: 10m before")
    tl = build_timeline(rules_from(tmp_path, BASE, policy), 1, LEAD)
    assert tl.step("first_touch.breach").due_at == utc("2027-01-15T23:25:00Z")
    assert tl.step("first_touch.warning").due_at == utc("2027-01-15T23:15:00Z")
    # 18:15 on Friday is after hours: the owner's DM waits for Tuesday 08:00 (Monday is MLK Day).
    dm = tl.step("first_touch.warning").recipients[0]
    assert dm.deliver_at == utc("2027-01-19T13:00:00Z") and dm.note == "held until working hours"


def test_business_warning_offset(tmp_path: Path) -> None:
    policy = POLICY.replace("warning: 80%", "warning: 10 business minutes before")
    tl = build_timeline(rules_from(tmp_path, BASE, policy), 1, LEAD)
    assert tl.step("first_touch.warning").due_at == utc("2027-01-19T13:15:00Z")


def test_quiet_hours_between_local_hours(tmp_path: Path) -> None:
    policy = POLICY.replace(
        "    team: sdr\n",
        '    team: sdr\n    quiet_hours: {outside_calendar: false, between: "17:00-09:00"}\n',
    )
    tl = build_timeline(rules_from(tmp_path, BASE, policy), 1, LEAD)
    dm = tl.step("ladder.1").recipients[0]  # due Tue 08:25 local: inside 17:00-09:00
    assert dm.deliver_at == utc("2027-01-19T14:00:00Z") and dm.note == "held: quiet hours"


def test_owner_in_another_time_zone_gets_deadlines_in_their_hours(tmp_path: Path) -> None:
    base = BASE.replace(
        '{name: Alex, owner_id: "101", email: alex@example.com, slack: U0ALEX00}',
        '{name: Alex, owner_id: "101", timezone: America/Los_Angeles}',
    )
    tl = build_timeline(rules_from(tmp_path, base, POLICY), 1, LEAD)
    # Friday 14:55 in LA: 30 business minutes end at 15:25 LA = 23:25 UTC.
    assert tl.timezone == "America/Los_Angeles"
    assert tl.step("first_touch.breach").due_at == utc("2027-01-15T23:25:00Z")


def test_owner_assigned_clock_waits_for_an_owner(tmp_path: Path) -> None:
    policy = POLICY.replace("warning: 80%", "clock_starts: owner_assigned")
    rules = rules_from(tmp_path, BASE, policy)
    tl = build_timeline(rules, 1, dict(LEAD, hubspot_owner_id=None))
    assert (tl.status, tl.steps) == ("waiting", [])
    assigned = dict(LEAD, hubspot_owner_assigneddate="1768914000000")  # epoch ms, Tue 08:00
    tl = build_timeline(rules, 1, assigned)
    assert tl.clock_start == utc("2026-01-20T13:00:00Z")
    assert tl.step("first_touch.breach").due_at == utc("2026-01-20T13:30:00Z")


CADENCE = """\
    cadence:
      min_touches: 3
      max_touches: 4
      within: 5 business days
      max_gap: 1 business day
    recycle:
      update_property: {hs_lead_status: NURTURE}
      reason: no connect
      notify_channel: "#nurture"
"""


def with_cadence(extra: str = "") -> str:
    return POLICY.replace("    escalation:\n", CADENCE + extra + "    escalation:\n")


def test_cadence_gaps_window_and_recycle(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, BASE, with_cadence())
    touches = [Touch(utc("2027-01-19T13:10:00Z")), Touch(utc("2027-01-20T15:00:00Z"))]
    tl = build_timeline(rules, 1, LEAD, touches=touches)
    got = {
        s.key: (s.due_at.strftime("%m-%dT%H:%M"), s.state)
        for s in tl.steps
        if "." not in s.key.replace("cadence.", "", 1) or s.key.startswith(("cadence", "recycle"))
    }
    assert got["cadence.touch2.due"] == ("01-20T13:10", FIRED)  # touch 2 came 1:50 late
    assert got["cadence.touch3.due"] == ("01-21T15:00", FIRED)
    # 5 business days of 10 hours from Fri 17:55 (Mon is a holiday): Mon Jan 25 17:55.
    assert got["cadence.end"] == ("01-25T22:55", FIRED)
    assert got["recycle"] == ("01-25T22:55", FIRED)
    recycle = tl.step("recycle")
    assert recycle.detail["update_property"] == {"hs_lead_status": "NURTURE"}
    assert [r.name for r in recycle.recipients] == ["#nurture"]
    assert tl.step("cadence.end").detail["short_by"] == 1
    assert tl.status == "recycled"


def test_max_touches_exhaust_the_cadence_early(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, BASE, with_cadence())
    touches = [Touch(utc(f"2027-01-19T1{h}:00:00Z")) for h in range(3, 7)]
    tl = build_timeline(rules, 1, LEAD, touches=touches)
    assert tl.step("recycle").due_at == utc("2027-01-19T16:00:00Z")
    assert tl.step("cadence.touch3.due").state == CANCELLED


def test_connect_cancels_the_rest_of_the_cadence(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, BASE, with_cadence())
    touches = [Touch(utc("2027-01-19T13:10:00Z"), connect=True)]
    tl = build_timeline(rules, 1, LEAD, touches=touches)
    assert tl.step("recycle").state == CANCELLED
    assert tl.step("recycle").why == "connected at 2027-01-19T13:10:00+00:00"
    assert tl.status == "connected"
    by_status = build_timeline(
        rules_from(
            tmp_path,
            BASE,
            with_cadence("    touches: {connected_when: {hs_lead_status: CONNECTED}}\n"),
        ),
        1,
        dict(LEAD, hs_lead_status="CONNECTED"),
        touches=[Touch(utc("2027-01-19T13:10:00Z"))],
    )
    assert by_status.status == "connected"


def test_stop_condition_cancels_everything_not_yet_due(tmp_path: Path) -> None:
    extra = "    stop_when: {lifecyclestage: [salesqualifiedlead, opportunity]}\n"
    rules = rules_from(tmp_path, BASE, with_cadence(extra))
    sql = dict(LEAD, lifecyclestage="opportunity")
    tl = build_timeline(rules, 1, sql, now=utc("2027-01-19T13:30:00Z"))
    states = {s.key: s.state for s in tl.steps}
    assert states["ladder.1"] == FIRED and states["ladder.2"] == CANCELLED
    assert tl.step("ladder.2").why.startswith("stopped: lifecyclestage in [salesqualifiedlead")
    assert tl.status == "stopped"


def test_pause_holds_steps_and_restarts_the_cadence_at_the_resume_date(tmp_path: Path) -> None:
    extra = "    pause: {when: {hs_lead_status: BAD_TIMING}, resume_property: follow_up}\n"
    rules = rules_from(tmp_path, BASE, with_cadence(extra))
    lead = dict(LEAD, hs_lead_status="BAD_TIMING", follow_up="2027-03-01")
    touch = [Touch(utc("2027-01-19T13:10:00Z"))]
    tl = build_timeline(rules, 1, lead, touches=touch, now=utc("2027-01-20T15:00:00Z"))
    assert tl.status == "paused"
    resume = tl.step("pause.resume@20270301T000000Z")
    assert resume.due_at == utc("2027-03-01T00:00:00Z") and resume.state == PENDING
    # The cadence restarts at the resume date (a Monday, 08:00 New York opening + 1 business day):
    # a new occurrence of the touch-2 nudge, keyed by the date.
    assert tl.step("cadence.touch2.due@20270301T000000Z").due_at == utc("2027-03-01T23:00:00Z")
    no_date = build_timeline(
        rules, 1, dict(lead, follow_up=None), touches=touch, now=utc("2027-01-20T12:00:00Z")
    )
    assert no_date.step("cadence.touch2.due").state == PAUSED  # due 13:10, paused since 12:00
    assert no_date.status == "paused"
    assert not any(s.key.startswith("pause.resume") for s in no_date.steps)


def test_premature_disqualification_is_flagged_and_reverted(tmp_path: Path) -> None:
    extra = (
        "    premature_disqualification:\n"
        "      when: {hs_lead_status: UNQUALIFIED}\n"
        "      do: [notify_manager]\n"
        "      revert: true\n"
    )
    rules = rules_from(tmp_path, BASE, with_cadence(extra))
    lead = dict(LEAD, hs_lead_status="UNQUALIFIED")
    touch = [Touch(utc("2027-01-19T13:10:00Z"))]
    tl = build_timeline(rules, 1, lead, touches=touch, now=utc("2027-01-19T14:00:00Z"))
    step = tl.step("disqualification.premature@20270119T140000Z")
    assert step.due_at == utc("2027-01-19T14:00:00Z") and step.state == FIRED
    assert (step.detail["touches"], step.detail["min_touches"], step.detail["revert"]) == (
        1,
        3,
        True,
    )
    assert step.detail["properties"] == ["hs_lead_status"]
    assert [r.role for r in step.recipients] == ["manager"]
    assert tl.step("recycle").state == PENDING  # reverted: the cadence goes on
    enough = [Touch(utc(f"2027-01-19T13:{m}:00Z")) for m in (10, 20, 30)]
    legit = build_timeline(rules, 1, lead, touches=enough, now=utc("2027-01-19T14:00:00Z"))
    assert not any(s.kind == "disqualification.premature" for s in legit.steps)
    assert legit.status == "disqualified"


def test_routing_by_portal_and_explanations(tmp_path: Path) -> None:
    routing = """\
routing:
  main:
    leads:
      - {name: demo, when: {lead_source: demo_request, numemployees: {gte: 50}}, policy: demo}
    fallback: ignore
  eu:
    portals: [222]
    leads: []
    fallback: demo
"""
    rules = rules_from(tmp_path, BASE, POLICY[: POLICY.index("routing:")], routing)
    small = dict(LEAD, numemployees="10")
    assert build_timeline(rules, 111, small).status == "ignored"
    assert build_timeline(rules, 111, small).match_explanation == (
        "routing 'main': no rule matched, fallback -> ignore"
    )
    big = build_timeline(rules, 111, dict(LEAD, numemployees="250"))
    assert big.match_explanation == (
        "routing 'main': rule 'demo' matched (lead_source == demo_request (value: "
        "'demo_request'); numemployees >= 50 (value: '250')) -> policy 'demo'"
    )
    eu = build_timeline(rules, 222, small)
    assert (eu.policy, eu.match_explanation) == (
        "demo",
        "routing 'eu': no rule matched, fallback -> policy 'demo'",
    )


def test_policy_calendar_override_and_unknown_owner(tmp_path: Path) -> None:
    extra = "  always:\n    timezone: UTC\n    hours: 24/7\n"
    base = BASE.replace("teams:\n", extra + "teams:\n", 1)
    policy = POLICY.replace("    team: sdr\n", "    team: sdr\n    calendar: always\n")
    tl = build_timeline(rules_from(tmp_path, base, policy), 1, dict(LEAD, hubspot_owner_id="999"))
    assert tl.calendar_name == "always"
    assert tl.step("first_touch.breach").due_at == utc("2027-01-15T23:25:00Z")
    assert tl.owner is not None and tl.owner.name == "owner 999"
    assert tl.step("ladder.1").recipients[0].note == "the lead has no owner in a team"


def test_timeline_is_json_serialisable(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, BASE, with_cadence())
    tl = build_timeline(rules, 1, LEAD, touches=[Touch(utc("2027-01-19T13:10:00Z"))])
    data = json.loads(json.dumps(tl.to_dict()))
    assert data["steps"][1]["key"] == "first_touch.warning"
    assert {s["key"] for s in data["steps"]} >= {"first_touch.breach", "ladder.4#r2", "recycle"}
