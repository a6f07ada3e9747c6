"""The rules we ship (default and examples) are valid, and the committed schema is current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sla_bot.rules.loader import load_directory, rule_files
from sla_bot.rules.schema import render
from sla_bot.rules.timeline import build_timeline

RULES = Path(__file__).resolve().parents[2] / "rules"
EXAMPLES = sorted(p for p in (RULES / "examples").iterdir() if p.is_dir())


@pytest.mark.parametrize("directory", [RULES, *EXAMPLES], ids=lambda p: p.name)
def test_shipped_rules_are_valid(directory: Path) -> None:
    result = load_directory(directory)
    assert result.errors == []
    assert result.ruleset is not None and result.ruleset.policies


def test_examples_are_not_loaded_with_the_default_rules() -> None:
    assert [p.name for p in rule_files(RULES)] == ["default.yaml"]
    assert [p.name for p in EXAMPLES] == ["demo", "follow-the-sun", "strict-minimum", "webinar"]


def test_default_rules_do_what_the_file_promises() -> None:
    rules = load_directory(RULES).ruleset
    assert rules is not None
    policy = rules.policies["inbound_demo"]
    assert policy.first_touch.within.text == "5 business minutes"
    assert policy.cadence is not None
    cadence = (policy.cadence.min_touches, policy.cadence.max_touches, policy.cadence.within.text)
    assert cadence == (8, 12, "10 business days")
    assert [step.do[0].kind for step in policy.escalation] == [
        "notify_owner",
        "notify_manager",
        "reassign",
        "notify_channel",
    ]
    lead = {"createdate": "2026-11-20T15:00:00Z", "hubspot_owner_id": "1001"}
    tl = build_timeline(rules, 1, dict(lead, lead_source="demo_request"))
    assert tl.step("first_touch.breach").due_at.isoformat() == "2026-11-20T15:05:00+00:00"
    assert build_timeline(rules, 1, dict(lead, lead_source="ads")).status == "ignored"


def test_committed_schema_is_current() -> None:
    assert (RULES / "schema.json").read_text(encoding="utf-8") == render(), (
        "rules/schema.json is stale: run python -m sla_bot.rules.schema"
    )
    schema = json.loads(render())
    assert set(schema["properties"]) == {
        "settings",
        "calendars",
        "teams",
        "policies",
        "routing",
        "digests",
    }


@pytest.mark.parametrize(
    "created",
    ["2026-12-25T03:17:00+00:00", "2026-11-21T23:59:30+00:00", "2027-01-01T12:00:00+00:00"],
)
def test_demo_rules_nudge_within_seconds_at_any_hour_of_any_day(created: str) -> None:
    """`sla-bot demo` promises its first message within a minute: no closed hours, no holiday."""
    from datetime import datetime, timedelta

    from sla_bot.rules.timeline import build_timeline

    rules = load_directory(RULES / "examples" / "demo").ruleset
    assert rules is not None
    at = datetime.fromisoformat(created)
    props = {
        "recent_conversion_event_name": "demo request",
        "hubspot_owner_id": "1001",
        "createdate": created,
    }
    timeline = build_timeline(rules, 62515, props, now=at)
    assert timeline.policy == "demo_inbound"
    first = min(r.deliver_at for s in timeline.steps for r in s.recipients if r.deliver_at)
    assert first - at <= timedelta(seconds=15)
