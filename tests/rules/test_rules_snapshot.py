"""Policy snapshots: JSON-able, stably hashed, and pinning them keeps a running lead's deadlines."""

from __future__ import annotations

import json
from pathlib import Path

from sla_bot.rules.ruleset import snapshot_hash
from sla_bot.rules.timeline import build_timeline
from tests.rules.util import BASE, LEAD, POLICY, rules_from


def test_snapshot_is_json_and_hash_is_stable(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, BASE, POLICY)
    snap = rules.policy_snapshot("demo")
    assert json.loads(json.dumps(snap)) == snap
    assert snap["definition"]["first_touch"] == {
        "within": "30 business minutes",
        "clock_starts": "created",
        "on_assignment": [{"notify_owner": True}],
        "warning": {"at": "80%", "do": [{"notify_owner": True}]},
    }
    assert set(snap["calendars"]) == {"ny"}
    again = rules_from(tmp_path / "again", BASE, POLICY).policy_snapshot("demo")
    assert snapshot_hash(snap) == snapshot_hash(again)


def test_hash_changes_with_the_policy_or_its_calendar(tmp_path: Path) -> None:
    h0 = snapshot_hash(rules_from(tmp_path / "a", BASE, POLICY).policy_snapshot("demo"))
    edited = POLICY.replace("warning: 80%", "warning: 90%")
    h1 = snapshot_hash(rules_from(tmp_path / "b", BASE, edited).policy_snapshot("demo"))
    later = BASE.replace('"08:00-18:00"', '"09:00-18:00"')
    h2 = snapshot_hash(rules_from(tmp_path / "c", later, POLICY).policy_snapshot("demo"))
    assert len({h0, h1, h2}) == 3


def test_pinned_snapshot_keeps_old_deadlines_after_an_edit(tmp_path: Path) -> None:
    old = rules_from(tmp_path / "old", BASE, POLICY)
    snap = json.loads(json.dumps(old.policy_snapshot("demo")))  # as stored on the lead
    new = rules_from(
        tmp_path / "new",
        BASE.replace('"08:00-18:00"', '"09:00-17:00"'),
        POLICY.replace("within: 30 business minutes", "within: 2 business hours"),
    )
    moved = build_timeline(new, 1, LEAD).step("first_touch.breach").due_at
    pinned = build_timeline(new.pin(snap), 1, LEAD, policy="demo")
    assert pinned.step("first_touch.breach").due_at.isoformat() == "2027-01-19T13:25:00+00:00"
    assert moved.isoformat() == "2027-01-19T16:00:00+00:00"  # Tue 09:00 + 2h with the edit
    assert pinned.match_explanation == "policy 'demo' pinned by the lead's snapshot"
    assert new.policies["demo"].first_touch.within.text == "2 business hours"  # pin copies
