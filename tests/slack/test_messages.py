"""Message content per kind, escaping, Slack's limits, and the app manifest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from flask import Flask

from integrations.slack.interactivity import bp
from integrations.slack.messages import escape, parse_value, plain_text, render
from tests.slack.helpers import payload

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
MANIFEST = Path(__file__).resolve().parents[2] / "integrations/slack/manifest.yaml"


def test_escape_handles_ampersand_first_and_nothing_else() -> None:
    assert escape('<!channel> & "Bob\'s"') == '&lt;!channel&gt; &amp; "Bob\'s"'


def test_nudge_says_who_what_when_and_links_the_record() -> None:
    text, blocks = render(payload(7, NOW), now=NOW)
    body = str(blocks)
    assert text == "New lead Jane Doe (Acme) needs a first touch"
    assert "<https://app.hubspot.com/contacts/1/record/0-1/901|Jane Doe (Acme)>" in body
    for fact in ("demo_request", "requested a demo", "3 min ago", "Fri Nov 20, 10:02 AM EST"):
        assert fact in body
    assert [b["action_id"] for b in blocks[-1]["elements"]] == [
        "sla_ack",
        "sla_log_touch",
        "sla_snooze",
    ]
    assert parse_value(blocks[-1]["elements"][0]["value"]) == (7, 1)


def test_manager_and_channel_messages_offer_reassign() -> None:
    breach = payload(
        7,
        NOW,
        kind="first_touch.breach",
        recipient={"role": "manager", "slack": "U0MANAGER1", "name": "Sam"},
    )
    _, blocks = render(breach, now=NOW)
    assert [b["action_id"] for b in blocks[-1]["elements"]] == ["sla_log_touch", "sla_reassign"]


def test_cadence_reminder_counts_touches() -> None:
    due = payload(7, NOW, kind="cadence.due", touches={"count": 2, "min": 8, "max": 12})
    assert plain_text(due, now=NOW).startswith("Touch 3 of 8 due for Jane Doe (Acme)")


def test_recycle_notice_has_reason_history_and_no_buttons() -> None:
    history = [
        {"at": (NOW - timedelta(days=d)).isoformat(), "connect": False, "kind": "call"}
        for d in (3, 2)
    ]
    recycle = payload(
        7,
        NOW,
        kind="recycle",
        reason="No connect after the full cadence",
        touches={"count": 2, "min": 8, "history": history},
        recipient={"role": "channel", "slack": "#marketing-nurture"},
    )
    text = plain_text(recycle, now=NOW)
    assert "Reason: No connect after the full cadence" in text
    assert "- Tue Nov 17, 10:00 AM EST: call (attempt)" in text
    _, blocks = render(recycle, now=NOW)
    assert all(b["type"] != "actions" for b in blocks)


def test_reassignment_reads_differently_for_old_and_new_owner() -> None:
    people = {
        "old_owner": {"name": "Alex", "owner_id": "1001"},
        "new_owner": {"name": "Casey", "owner_id": "1003"},
    }
    old = payload(
        7, NOW, kind="reassigned", recipient={"role": "owner", "owner_id": "1001"}, **people
    )
    new = payload(
        7, NOW, kind="reassigned", recipient={"role": "owner", "owner_id": "1003"}, **people
    )
    assert plain_text(old, now=NOW).startswith("Jane Doe (Acme) was reassigned from Alex to Casey")
    assert plain_text(new, now=NOW).startswith(
        "Jane Doe (Acme) is now yours (reassigned from Alex)"
    )
    assert render(old, now=NOW)[1][-1]["type"] != "actions"
    assert render(new, now=NOW)[1][-1]["type"] == "actions"


def test_premature_disqualification_notice() -> None:
    early = payload(7, NOW, kind="disqualification.premature", touches={"count": 3, "min": 8})
    assert plain_text(early, now=NOW).startswith(
        "Jane Doe (Acme) was disqualified after only 3 of 8"
    )


def test_huge_crm_text_stays_within_block_kit_limits() -> None:
    lead = {**payload(7, NOW)["lead"], "name": "x" * 5000, "action": "y" * 5000}
    history = [{"at": NOW.isoformat(), "kind": "call"}] * 200
    _, blocks = render(
        payload(7, NOW, lead=lead, detail="z" * 5000, touches={"count": 200, "history": history}),
        now=NOW,
    )
    assert len(blocks) <= 50
    for block in blocks:
        assert len((block.get("text") or {}).get("text", "")) <= 3000
        assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))


def test_manifest_requests_the_scopes_used_and_points_at_the_endpoint() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"chat:write", "im:write", "users:read", "users:read.email", "im:history"} <= scopes
    url = manifest["settings"]["interactivity"]["request_url"]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert url.endswith("/slack/actions")
    app = Flask(__name__)
    app.register_blueprint(bp)
    assert "/slack/actions" in {rule.rule for rule in app.url_map.iter_rules()}


def test_other_kinds_use_the_engine_text_and_still_link_the_record() -> None:
    expired = payload(7, NOW, kind="ack.expired", text="You said you were on Jane, no touch yet")
    text, blocks = render(expired, now=NOW)
    assert text == "You said you were on Jane, no touch yet"
    assert "|Jane Doe (Acme)>" in blocks[0]["text"]["text"]
    assert blocks[-1]["elements"][0]["action_id"] == "sla_ack"
