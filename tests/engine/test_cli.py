"""`sla-bot lead show`: why was I pinged?"""

from __future__ import annotations

import json

import pytest
from sqlalchemy.engine import Engine

from sla_bot.cli import main
from sla_bot.clock import FrozenClock
from tests.conftest import T0
from tests.engine.harness import RULES, Harness
from tests.engine.test_events import PROPS, _sync
from tests.signing import SECRET


def test_lead_show_prints_decisions_and_timeline(
    engine: Engine,
    db_url: str,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    h = Harness(engine, clock)
    h.webhook(_sync(901, PROPS))
    h.at(T0)
    h.at(T0.replace(minute=15))
    for name, value in {
        "DATABASE_URL": db_url,
        "SLA_BOT_RULES_DIR": str(RULES),
        "HUBSPOT_CLIENT_SECRET": SECRET,
    }.items():
        monkeypatch.setenv(name, value)
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
