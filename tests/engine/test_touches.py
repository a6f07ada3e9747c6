"""Touch signals: one call seen as count + last-contacted (+ its Slack log) is one touch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sla_bot.engine import touches as tch

T = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def test_count_and_last_contacted_of_one_call_pair_into_one_touch() -> None:
    touches: list[dict] = []
    state: dict = {}
    tch.observe_count(touches, state, "1", at=T + timedelta(minutes=5), owner_id="1")
    tch.observe_last_contacted(touches, state, T.isoformat(), owner_id="1")
    assert len(touches) == 1
    assert touches[0]["signals"] == [tch.LAST, tch.COUNT] or set(touches[0]["signals"]) == {
        tch.COUNT,
        tch.LAST,
    }


def test_each_increment_is_a_touch_and_old_values_are_not() -> None:
    touches: list[dict] = []
    state: dict = {}
    tch.observe_count(touches, state, 2, at=T, owner_id="1")
    tch.observe_count(touches, state, 2, at=T + timedelta(hours=2), owner_id="1")
    tch.observe_count(touches, state, 3, at=T + timedelta(hours=3), owner_id="2")
    assert [t["owner_id"] for t in touches] == ["1", "1", "2"]
    tch.observe_last_contacted(touches, state, (T + timedelta(days=1)).isoformat(), owner_id="2")
    tch.observe_last_contacted(touches, state, T.isoformat(), owner_id="2")  # older: no touch
    assert len(touches) == 4


def test_slack_touch_is_not_counted_again_when_hubspot_echoes_it() -> None:
    touches: list[dict] = []
    state: dict = {}
    tch.log_slack(touches, at=T, owner_id="1", kind="call", connect=True, by="U1")
    tch.observe_count(touches, state, 1, at=T + timedelta(minutes=1), owner_id="1")
    tch.observe_last_contacted(touches, state, T.isoformat(), owner_id="1")
    assert len(touches) == 1 and touches[0]["connect"] is True
    timeline = tch.for_timeline(touches, ["num_contacted_notes"])
    assert len(timeline) == 1 and timeline[0].connect
    assert (
        tch.for_timeline([{"at": T.isoformat(), "signals": [tch.SLACK]}], ["num_contacted_notes"])
        == []
    )
