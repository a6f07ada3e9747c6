"""`sla-bot lead show`: why was I pinged?"""

from __future__ import annotations

import json

import pytest
from sqlalchemy.engine import Engine

from sla_bot.cli import main
from sla_bot.clock import FrozenClock
from tests.conftest import T0
from tests.engine.harness import RULES, Harness, ev
from tests.engine.test_events import PROPS, _sync
from tests.signing import SECRET


@pytest.fixture
def harness(
    engine: Engine, db_url: str, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> Harness:
    """A harness whose database and rules `sla-bot lead show` reads."""
    for name, value in {
        "DATABASE_URL": db_url,
        "SLA_BOT_RULES_DIR": str(RULES),
        "HUBSPOT_CLIENT_SECRET": SECRET,
    }.items():
        monkeypatch.setenv(name, value)
    return Harness(engine, clock)


def test_lead_show_prints_decisions_and_timeline(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    h = harness
    h.webhook(_sync(901, PROPS))
    h.at(T0)
    h.at(T0.replace(minute=15))
    assert main(["lead", "show", "901", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    fired = [e["detail"]["step"] for e in report["events"] if e["kind"] == "step.fired"]
    assert fired == [
        "lead.assigned@20261120T150000Z",
        "first_touch.warning",
        "first_touch.breach",
        "ladder.1",
        "ladder.2",
    ]
    assert report["lead"]["policy"] == "inbound_demo"
    steps = {s["key"]: s for s in report["timeline"]["steps"]}
    assert [s["key"] for s in report["timeline"]["steps"]][1:3] == [
        "first_touch.warning",
        "first_touch.breach",
    ]
    # What the engine did, step by step: only what was sent says so.
    assert steps["ladder.2"]["outcome"] == "sent"
    assert steps["ladder.3"]["outcome"] == "due: decided on the next sweep"  # not "fired"
    assert main(["lead", "show", "901", "--portal", "62515"]) == 0
    out = capsys.readouterr().out
    assert "step.fired" in out and "ladder.2" in out and "Policy:  inbound_demo" in out
    assert main(["lead", "show", "12345"]) == 1


def test_lead_show_text_wraps_instead_of_cutting_and_gives_every_time_a_zone(
    harness: Harness, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    h.webhook(_sync(902, PROPS))
    h.at(T0)
    h.at(T0.replace(minute=20))
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["lead", "show", "902"]) == 0
    out = capsys.readouterr().out
    words = " ".join(out.split())
    # the whole routing explanation and who each step went to, never cut mid-word
    assert "(value: 'demo_request')) -> policy 'inbound_demo'" in words
    assert "sent: Alex Rep (owner, at 2026-11-20 15:05:00 UTC)" in words
    assert "sent: Sam Manager (manager, at 2026-11-20 15:15:00 UTC)" in words
    events = out.split("DETAIL\n", 1)[1].split("\n\n", 1)[0]
    assert max(len(line) for line in events.splitlines()) <= 100  # wrapped to the terminal
    for line in events.splitlines():
        assert line.startswith(" ") or line[:23].endswith(" UTC"), line
    assert main(["lead", "show", "902", "--tz", "America/New_York"]) == 0
    assert "2026-11-20 10:05:00 EST" in capsys.readouterr().out
    assert main(["lead", "show", "902", "--tz", "Mars/Olympus"]) == 2


def test_lead_show_says_an_ignored_lead_had_no_properties(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    h = harness
    h.webhook(ev("contact.creation", 903, T0))  # no token: nothing else is known
    h.webhook(_sync(904, {"lifecyclestage": "customer"}))  # ignored on purpose, by a rule
    h.at(T0)
    assert main(["lead", "show", "903"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Status: ignored" in out
    assert "ignored for lack of properties" in out and "HUBSPOT_ACCESS_TOKEN" in out
    assert "workflow webhook" in out
    assert main(["lead", "show", "904", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["note"] is None
