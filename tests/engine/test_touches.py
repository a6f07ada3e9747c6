"""Touch signals: one call seen as count + last-contacted (+ its Slack log) is one touch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sla_bot.engine import touches as tch
from sla_bot.engine.state import LeadState, TouchRecord

T = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
H = timedelta(hours=1)


def test_count_and_last_contacted_of_one_call_pair_into_one_touch() -> None:
    touches: list[TouchRecord] = []
    state = LeadState()
    tch.observe_count(touches, state, "1", at=T + timedelta(minutes=5), owner_id="1")
    tch.observe_last_contacted(touches, state, T.isoformat(), owner_id="1")
    assert len(touches) == 1
    assert set(touches[0].signals) == {tch.COUNT, tch.LAST}


def test_each_increment_is_a_touch_and_old_values_are_not() -> None:
    touches: list[TouchRecord] = []
    state = LeadState()
    tch.observe_count(touches, state, 2, at=T, owner_id="1")
    tch.observe_count(touches, state, 2, at=T + 2 * H, owner_id="1")
    tch.observe_count(touches, state, 3, at=T + 3 * H, owner_id="2")
    assert [t.owner_id for t in touches] == ["1", "1", "2"]
    tch.observe_last_contacted(touches, state, (T + timedelta(days=1)).isoformat(), owner_id="2")
    tch.observe_last_contacted(touches, state, T.isoformat(), owner_id="2")  # older: no touch
    assert len(touches) == 4


def test_a_count_too_big_to_be_real_is_ignored_not_a_crash() -> None:
    touches: list[TouchRecord] = []
    state = LeadState()
    assert tch.observe_count(touches, state, "1e999", at=T, owner_id="1") == []
    assert touches == [] and state.hubspot_touch_count == 0


def test_slack_touch_is_not_counted_again_when_hubspot_echoes_it() -> None:
    touches: list[TouchRecord] = []
    state = LeadState()
    tch.log_slack(touches, at=T, owner_id="1", kind="call", connect=True, by="U1")
    tch.observe_count(touches, state, 1, at=T + timedelta(minutes=1), owner_id="1")
    tch.observe_last_contacted(touches, state, T.isoformat(), owner_id="1")
    assert len(touches) == 1 and touches[0].connect is True
    timeline = tch.for_timeline(touches, ["num_contacted_notes"])
    assert len(timeline) == 1 and timeline[0].connect
    slack_only = TouchRecord(at=T, signals=[tch.SLACK])
    assert tch.for_timeline([slack_only], ["num_contacted_notes"]) == []


def test_a_slack_touch_pairs_with_its_echo_however_late_it_comes() -> None:
    touches: list[TouchRecord] = []
    state = LeadState()
    tch.log_slack(touches, at=T, owner_id="1", kind="email", connect=False, by="U1")
    # The write-back was delayed a day (backoff, a revoked token, a worker down).
    late = T + timedelta(days=1)
    assert tch.observe_count(touches, state, 1, at=late, owner_id="1") == []
    assert tch.observe_last_contacted(touches, state, T.isoformat(), owner_id="1") == []
    assert len(touches) == 1 and set(touches[0].signals) == {tch.SLACK, tch.COUNT, tch.LAST}


def test_a_real_call_before_the_late_echo_is_still_its_own_touch() -> None:
    touches: list[TouchRecord] = []
    state = LeadState()
    tch.log_slack(touches, at=T, owner_id="1", kind="call", connect=False, by="U1")
    call = T + 3 * H  # a call logged in HubSpot, whose signals arrive before our echo
    tch.observe_last_contacted(touches, state, call.isoformat(), owner_id="1")
    tch.observe_count(touches, state, 1, at=call, owner_id="1")
    tch.observe_count(touches, state, 2, at=T + 30 * H, owner_id="1")  # our echo, a day late
    assert len(touches) == 2
    assert [t.at for t in sorted(touches, key=lambda t: t.at)] == [T, call]
