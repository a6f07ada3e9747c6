"""`sla-bot rules backtest`: a hand-computable rule change, no writes, no network, formats."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from sla_bot.backtest.load import open_readonly
from sla_bot.cli import main
from sla_bot.clock import FrozenClock
from sla_bot.db.schema import metadata
from tests.conftest import T0
from tests.engine.harness import RULES, Harness, prop
from tests.engine.test_events import PROPS, _sync

M = timedelta(minutes=1)
# Friday 10:00 in New York. Baseline: first touch within 5 business minutes (warning at 80%:
# +4m); the candidate halves it: 150 business seconds (warning at +2m).
TOUCH_AFTER = {1: 3 * M, 2: 1 * M, 3: 6 * M, 4: None}  # contact -> first touch (None: never)


def _history(engine: Engine, clock: FrozenClock) -> Harness:
    h = Harness(engine, clock)
    for oid in TOUCH_AFTER:
        h.webhook(_sync(oid, {**PROPS, "firstname": f"Lead{oid}"}))
    h.at(T0)
    times = sorted({T0 + m for m in (1, 2, 2.5, 3, 4, 5, 6, 15, 25, 35, 95) for m in [m * M]})
    for at in times:
        for oid, after in TOUCH_AFTER.items():
            if after is not None and T0 + after == at:
                h.webhook(prop(oid, at, "num_contacted_notes", 1))
        h.at(at)
    return h


def _halved(tmp_path: Path) -> Path:
    text_ = (RULES / "default.yaml").read_text()
    assert "within: 5 business minutes" in text_
    (tmp_path / "halved").mkdir()
    (tmp_path / "halved" / "default.yaml").write_text(
        text_.replace("within: 5 business minutes", "within: 150 business seconds")
    )
    return tmp_path / "halved"


def _backtest(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str, *args: str
) -> str:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SLA_BOT_RULES_DIR", str(RULES))
    period = [
        "--from",
        (T0 - timedelta(hours=1)).isoformat(),
        "--to",
        (T0 + 2 * 60 * M).isoformat(),
    ]
    assert main(["rules", "backtest", *period, *args]) == 0
    return capsys.readouterr().out


def test_halving_the_first_touch_target_breaches_the_lead_touched_at_minute_three(
    engine: Engine,
    db_url: str,
    clock: FrozenClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _history(engine, clock)
    halved = _halved(tmp_path)
    out = json.loads(
        _backtest(
            monkeypatch,
            capsys,
            db_url,
            "--rules",
            str(halved),
            "--against",
            str(RULES),
            "--format",
            "json",
        )
    )
    totals = out["totals"]
    # Baseline: 3 (touched at 6m) and 4 (never) breach; candidate: 1 (touched at 3m) too.
    assert totals["breaches"] == {"baseline": 2, "candidate": 3, "difference": 1}
    # Lead 1 gets the candidate's warning (at 2m) and its first rung (at 2.5m): two more nudges;
    # nothing else changes (lead 1's touch at 3m stops its ladder before the manager's rung).
    assert totals["nudges"]["difference"] == 2
    assert totals["escalations"]["difference"] == 0
    (change,) = out["fate_changes"]
    assert change["contact_id"] == 1
    assert "first touch in time" in change["baseline"] and "breached" in change["candidate"]
    assert change["why"] == (
        "first-touch deadline 2026-11-20 15:05:00 UTC -> 2026-11-20 15:02:30 UTC; "
        "first touch 2026-11-20 15:03:00 UTC"
    )
    # Without --against, the rules in force: what the worker really did.
    alone = json.loads(_backtest(monkeypatch, capsys, db_url, "--format", "json"))
    assert alone["totals"]["breaches"] == 2
    assert alone["history"]["leads"] == 4


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in metadata.sorted_tables
        }


def test_a_backtest_writes_nothing_and_calls_nobody(
    engine: Engine,
    db_url: str,
    clock: FrozenClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _history(engine, clock)
    before = _counts(engine)
    path = Path(db_url.removeprefix("sqlite:///")) if db_url.startswith("sqlite") else None
    if path is not None:
        with engine.connect() as conn:  # fold the WAL in, so the file holds every row
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    engine.dispose()
    calls: list[Any] = []
    real_connect = socket.socket.connect

    def no_network(sock: socket.socket, address: Any) -> Any:
        if sock.family == socket.AF_UNIX or (db_url.startswith("postgresql") and _is_db(address)):
            return real_connect(sock, address)
        calls.append(address)
        raise OSError("a backtest must not use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "test-hubspot-token-never-sent")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "test-slack-token-never-sent")
    _backtest(monkeypatch, capsys, db_url, "--against", str(_halved(tmp_path)))
    assert calls == []
    monkeypatch.undo()
    assert _counts(engine) == before
    if path is not None:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def _is_db(address: Any) -> bool:
    from sqlalchemy.engine import make_url

    from tests.conftest import PG_URL

    url = make_url(PG_URL or "postgresql://127.0.0.1:5432/x")
    return isinstance(address, tuple) and address[1] == (url.port or 5432)


def test_the_backtest_connection_cannot_write(engine: Engine, db_url: str) -> None:
    ro = open_readonly(db_url)
    try:
        with pytest.raises(SQLAlchemyError), ro.begin() as conn:
            conn.execute(text("DELETE FROM sync_state"))
    finally:
        ro.dispose()


def test_csv_and_table_say_the_same(
    engine: Engine,
    db_url: str,
    clock: FrozenClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _history(engine, clock)
    halved = str(_halved(tmp_path))
    rows = list(
        csv.DictReader(
            io.StringIO(
                _backtest(
                    monkeypatch,
                    capsys,
                    db_url,
                    "--rules",
                    halved,
                    "--against",
                    str(RULES),
                    "--format",
                    "csv",
                )
            )
        )
    )
    total = {r["metric"]: r for r in rows if r["section"] == "total"}
    assert (total["breaches"]["baseline"], total["breaches"]["candidate"]) == ("2", "3")
    assert [r["key"] for r in rows if r["section"] == "fate"] == ["62515/1"]
    table = _backtest(monkeypatch, capsys, db_url, "--rules", halved, "--against", str(RULES))
    assert "2->3 (+1)" in table
    assert "LEADS WHOSE FATE CHANGES (1)" in table and "contact 1 (portal 62515)" in table


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_the_progress_bar_shows_only_on_a_terminal() -> None:
    from sla_bot.backtest.cli import Progress

    quiet, shown = _Stream(tty=False), _Stream(tty=True)
    for stream in (quiet, shown):
        bar = Progress("replaying", 2000, stream)
        bar(1000)
        bar(2000)
    assert quiet.getvalue() == ""
    assert " 50% " in shown.getvalue() and "#" * 30 in shown.getvalue()
    assert shown.getvalue().endswith("inputs/s\n")
