"""Noise control in the rules: batching and cap settings, quiet hours for channels, and an
owner out of office handing the step to the managers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sla_bot.engine.notifications import batching
from sla_bot.rules.people import Recipient
from sla_bot.rules.people import noise_for as noise_of
from sla_bot.rules.timeline import build_timeline
from tests.rules.test_rules_cli import run
from tests.rules.test_rules_timeline import utc
from tests.rules.util import BASE, LEAD, POLICY, errors_of, rules_from, write


def with_policy(extra: str) -> str:
    return POLICY.replace("    team: sdr\n", f"    team: sdr\n{extra}")


def test_noise_settings_team_wins_over_policy(tmp_path: Path) -> None:
    base = BASE.replace(
        '    channel: "#sales"\n', '    channel: "#sales"\n    noise: {max_per_hour: 4}\n'
    )
    rules = rules_from(tmp_path, base, with_policy("    noise: {batch_window: 10m}\n"))
    team = noise_of(rules, "demo", "sdr")
    assert team is not None and team.max_per_hour == 4 and team.window_seconds == 0
    policy = noise_of(rules, "demo", None)
    assert policy is not None and policy.window_seconds == 600
    manager = Recipient("manager", "Mia", slack="U0MANAGER")
    assert batching(policy, "ladder", manager, 7) == {
        "key": "7:manager:U0MANAGER",
        "window": 600,
        "max_per_hour": None,
    }
    owner = Recipient("owner", "Alex", slack="U0ALEX00", owner_id="101")
    assert batching(policy, "ladder", owner, 7) is None  # reps' own DMs are never batched
    assert batching(policy, "reassigned", manager, 7) is None
    assert batching(None, "ladder", manager, 7) is None


def test_rules_check_reports_bad_noise_settings(tmp_path: Path) -> None:
    policy = with_policy("    noise: {batch_window: 2h}\n")
    errors = [e.message for e in errors_of(tmp_path, {"rules.yaml": BASE + policy})]
    assert any("batch_window 2h is longer than 1h" in m for m in errors), errors
    policy = with_policy("    noise: {max_per_hour: 0}\n")
    errors = [e.message for e in errors_of(tmp_path / "a", {"rules.yaml": BASE + policy})]
    assert any("greater than or equal to 1" in m for m in errors), errors
    lonely = BASE.replace('    channel: "#sales"\n', "").replace(
        "    managers: [{name: Mia Manager, email: mia@example.com, slack: U0MANAGER}]\n",
        "    noise: {batch_window: 5m}\n",
    )
    errors = [e.message for e in errors_of(tmp_path / "b", {"rules.yaml": lonely + POLICY})]
    assert any("no managers and no channel to batch" in m for m in errors), errors


def test_quiet_hours_hold_channel_posts_when_asked(tmp_path: Path) -> None:
    quiet = '    quiet_hours: {between: "09:00-12:00", channels: true}\n'
    tl = build_timeline(rules_from(tmp_path, BASE, with_policy(quiet)), 1, LEAD)
    post = tl.step("ladder.4").recipients[0]  # due Tue 09:25 local
    assert post.role == "channel"
    assert post.deliver_at == utc("2027-01-19T17:00:00Z") and post.note == "held: quiet hours"
    loud = '    quiet_hours: {between: "09:00-12:00"}\n'
    tl = build_timeline(rules_from(tmp_path / "loud", BASE, with_policy(loud)), 1, LEAD)
    post = tl.step("ladder.4").recipients[0]
    assert post.deliver_at == tl.step("ladder.4").due_at  # channels are not held by default


def test_out_of_office_owner_is_held_and_the_managers_hear_instead(tmp_path: Path) -> None:
    lead = {**LEAD, "hubspot_owner_id": "103"}  # Casey: away all January
    skip = build_timeline(rules_from(tmp_path, BASE, POLICY), 1, lead)
    [casey] = skip.step("ladder.1").recipients
    assert casey.deliver_at is None and casey.note == "out of office until 2027-01-31"
    escalate = with_policy("    quiet_hours: {out_of_office: escalate}\n")
    tl = build_timeline(rules_from(tmp_path / "esc", BASE, escalate), 1, lead)
    step = tl.step("ladder.1")
    casey, mia = step.recipients
    assert casey.name == "Casey" and casey.deliver_at == utc("2027-02-01T13:00:00Z")
    assert "held until they are back" in (casey.note or "")
    assert (mia.role, mia.name, mia.deliver_at) == ("manager", "Mia Manager", step.due_at)
    assert "out of office" in step.detail["out_of_office"]


def test_simulate_shows_which_messages_are_batched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    noise = "    noise: {batch_window: 10m, max_per_hour: 6}\n"
    rules = write(tmp_path / "rules", {"rules.yaml": BASE + with_policy(noise)})
    lead = tmp_path / "lead.json"
    lead.write_text(json.dumps(LEAD), encoding="utf-8")
    assert run("simulate", "--lead", str(lead), "--dir", str(rules)) == 0
    out = capsys.readouterr().out
    note = "batched with other leads within 10m, at most 6 an hour, more fold into the next batch"
    assert f"DM manager Mia Manager ({note})" in out
    assert f"post to #sales ({note})" in out
    assert f"DM owner Alex ({note})" not in out
