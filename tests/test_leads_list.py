"""The queue: `sla-bot leads list` and its HTML fragment (most urgent first, next step, when)."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from sla_bot.cli import main
from sla_bot.clock import FrozenClock
from sla_bot.leadqueue.html import render
from sla_bot.leadqueue.query import QueueFilter, open_leads
from tests.conftest import T0
from tests.engine.harness import RULES, Harness, load_rules, prop
from tests.engine.test_events import PROPS, _sync

M, H = timedelta(minutes=1), timedelta(hours=1)
EVIL = '<img src=x onerror="alert(1)">Zed</td><script>document.title="owned"</script>'


def _queue(engine: Engine, clock: FrozenClock) -> Harness:
    h = Harness(engine, clock)
    h.webhook(_sync(1, {**PROPS, "firstname": "Early"}))  # breached at +5m, untouched
    h.webhook(_sync(2, {**PROPS, "firstname": EVIL, "hubspot_owner_id": "1002"}))
    h.webhook(_sync(3, {**PROPS, "firstname": "Paused", "hubspot_owner_id": "1003"}))
    h.at(T0)
    h.webhook(prop(2, T0 + 2 * M, "num_contacted_notes", 1))  # in cadence: next touch in 2 bd
    h.webhook(prop(3, T0 + 2 * M, "hs_lead_status", "BAD_TIMING"))
    h.at(T0 + 2 * M)
    late = _sync(4, {**PROPS, "createdate": (T0 + 5 * M).isoformat(), "firstname": "Late"})
    h.webhook(late)
    h.at(T0 + 6 * M)
    return h


def test_most_urgent_first_with_the_next_step(engine: Engine, clock: FrozenClock) -> None:
    _queue(engine, clock)
    now = T0 + 6 * M
    with engine.connect() as conn:
        items = open_leads(conn, load_rules(), now)
    assert [i.contact_id for i in items] == [1, 4, 2, 3]
    first, late, touched, paused = items
    assert (first.status, first.overdue, first.deadline) == ("breached", True, T0 + 5 * M)
    assert (first.next_step, first.next_at) == ("ladder.2", T0 + 15 * M)
    assert first.next_who == "manager Sam Manager"
    assert (late.status, late.deadline, late.next_step) == (
        "awaiting_first_touch",
        T0 + 10 * M,
        "first_touch.warning",
    )
    assert (touched.status, touched.deadline_kind) == ("in_cadence", "next_touch")
    assert (paused.status, paused.deadline) == ("paused", None)
    with engine.connect() as conn:
        loaded = load_rules()
        assert [
            i.contact_id for i in open_leads(conn, loaded, now, QueueFilter(breached=True))
        ] == [1]
        soon = QueueFilter(due_within=5 * M)
        assert [i.contact_id for i in open_leads(conn, loaded, now, soon)] == [1, 4]
        assert [i.contact_id for i in open_leads(conn, loaded, now, QueueFilter(owner="1002"))] == [
            2
        ]
        by_name = QueueFilter(owner="casey")
        assert [i.contact_id for i in open_leads(conn, loaded, now, by_name)] == [3]
        assert open_leads(conn, loaded, now, QueueFilter(team="nobody")) == []
        paused_only = QueueFilter(status="paused", policy="inbound_demo")
        assert [i.contact_id for i in open_leads(conn, loaded, now, paused_only)] == [3]


def test_the_cli_prints_table_csv_and_json(
    engine: Engine,
    db_url: str,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _queue(engine, clock)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("SLA_BOT_RULES_DIR", str(RULES))
    monkeypatch.setattr("sla_bot.clock.SystemClock.now", lambda self: T0 + 6 * M)
    assert main(["leads", "list", "--format", "json", "--due-within", "5m"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert [(i["contact_id"], i["overdue"]) for i in got] == [(1, True), (4, False)]
    assert main(["leads", "list", "--format", "csv", "--breached"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("lead_id,") and len(lines) == 2
    assert main(["leads", "list"]) == 0
    table = capsys.readouterr().out
    assert "overdue 1m" in table and "ladder.2" in table
    assert main(["leads", "list", "--due-within", "2 business days"]) == 2


def test_the_fragment_escapes_crm_text_in_a_real_browser(
    engine: Engine, clock: FrozenClock, tmp_path: Path
) -> None:
    _queue(engine, clock)
    now = T0 + 6 * M
    with engine.connect() as conn:
        html = render(open_leads(conn, load_rules(), now), now)
    assert "<script>" not in html and "&lt;script&gt;" in html
    page = tmp_path / "queue.html"
    page.write_text(f"<!doctype html><title>queue</title><body>{html}</body>")
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "<title>queue</title>" in dom  # the injected script did not run
    assert dom.count("<tr") == 5 and "<img" not in dom  # 4 leads + the header; no element injected
    assert "overdue" in dom and 'class="overdue"' in dom
