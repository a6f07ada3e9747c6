"""Acceptance: `sla-bot report` reproduces the hand-computed answers of the seeded history
(tests/outcomes/history.py) exactly, in table, CSV and JSON, on SQLite and PostgreSQL.

Every expected number below was worked out by hand from the history's table:
- speed: nearest-rank median and p90 of whole seconds from clock start to first touch; lead 4
  waits over the weekend of the DST change: 5 business minutes on Friday (17:55-18:00 EDT) and 3
  on Monday (08:00-08:03 EST) = 480 s, and 2d 15h 8m = 227,280 s of real time (a naive local
  difference would say 62h 8m);
- compliance = met / (met + breached); connect rate = connected / touched; "with min touches" =
  disqualified or recycled leads that got 3 touches first;
- funnel waits: from the latest earlier stage the lead reached;
- costs (window 2026-10-26 .. 2026-11-08): webinar 3,100 over October (31 days) -> 6 days =
  600.00; search 1,400 over 2026-10-26..11-08 -> all 14 days = 1,400.00.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from sla_bot.cli import main
from tests.outcomes.history import RULES, play

WINDOW = ["--since", "2026-10-26", "--until", "2026-11-09"]
COSTS = """# campaign spend: from and to are inclusive days
campaign,from,to,spend
webinar,2026-10-01,2026-10-31,3100
search,2026-10-26,2026-11-08,1400.00
"""
# metric -> values per group, in report order (groups sorted by label, "(none)" last), then all.
REP = {
    "leads": (5, 3, 8),
    "touched": (5, 2, 7),
    "business_median_s": (240, 480, 240),
    "business_p90_s": (720, 480, 720),
    "wall_median_s": (240, 480, 240),
    "wall_p90_s": (51120, 227280, 227280),
    "within_target_pct": ("80.0", "0.0", "57.1"),
    "met": (4, 0, 4),
    "breached": (1, 3, 4),
    "pending": (0, 0, 0),
    "compliance_pct": ("80.0", "0.0", "50.0"),
    "touches": (9, 2, 11),
    "touches_per_lead": ("1.80", "0.67", "1.38"),
    "connected": (1, 1, 2),
    "connect_rate_pct": ("20.0", "50.0", "28.6"),
    "closed_unconverted": (3, 1, 4),
    "min_touches_first": (2, 0, 2),
    "min_touches_first_pct": ("66.7", "0.0", "50.0"),
    "premature_dq": (1, 0, 1),
    "qualified": (1, 2, 3),
    "opportunity": (1, 1, 2),
    "customer": (1, 0, 1),
    "touched_after_s": (240, 480, 240),
    "connected_after_s": (960, 1320, 960),
    "qualified_after_s": (157200, 91800, 93420),
    "opportunity_after_s": (86400, 0, 0),
    "customer_after_s": (259200, None, 259200),
}
SOURCE = {  # ORGANIC_SEARCH, PAID_SEARCH, all
    "leads": (4, 4, 8),
    "touched": (3, 4, 7),
    "business_median_s": (480, 180, 240),
    "business_p90_s": (720, 480, 720),
    "wall_median_s": (480, 180, 240),
    "wall_p90_s": (51120, 227280, 227280),
    "within_target_pct": ("33.3", "75.0", "57.1"),
    "met": (1, 3, 4),
    "breached": (3, 1, 4),
    "compliance_pct": ("25.0", "75.0", "50.0"),
    "touches": (3, 8, 11),
    "touches_per_lead": ("0.75", "2.00", "1.38"),
    "connected": (2, 0, 2),
    "connect_rate_pct": ("66.7", "0.0", "28.6"),
    "closed_unconverted": (2, 2, 4),
    "min_touches_first": (0, 2, 2),
    "min_touches_first_pct": ("0.0", "100.0", "50.0"),
    "premature_dq": (1, 0, 1),
    "qualified": (2, 1, 3),
    "opportunity": (1, 1, 2),
    "customer": (1, 0, 1),
}
WEEK = {  # 2026-W44 (the DST week), 2026-W45, all
    "leads": (4, 4, 8),
    "touched": (4, 3, 7),
    "business_median_s": (480, 240, 240),
    "business_p90_s": (720, 240, 720),
    "wall_median_s": (480, 240, 240),
    "wall_p90_s": (227280, 240, 227280),
    "within_target_pct": ("25.0", "100.0", "57.1"),
    "met": (1, 3, 4),
    "breached": (3, 1, 4),
    "compliance_pct": ("25.0", "75.0", "50.0"),
    "touches": (6, 5, 11),
    "touches_per_lead": ("1.50", "1.25", "1.38"),
    "connected": (1, 1, 2),
    "connect_rate_pct": ("25.0", "33.3", "28.6"),
    "closed_unconverted": (2, 2, 4),
    "min_touches_first": (1, 1, 2),
    "min_touches_first_pct": ("50.0", "50.0", "50.0"),
    "premature_dq": (1, 0, 1),
    "qualified": (2, 1, 3),
    "opportunity": (1, 1, 2),
    "customer": (0, 1, 1),
}
CAMPAIGN = {  # search, webinar, (none), all
    "leads": (4, 3, 1, 8),
    "spend": ("1400.00", "600.00", "0.00", "2000.00"),
    "cost_per_lead": ("350.00", "200.00", "0.00", "250.00"),
    "cost_per_qualified": ("700.00", "600.00", None, "666.67"),
    "cost_per_opportunity": ("1400.00", "600.00", None, "1000.00"),
    "cost_per_customer": ("1400.00", None, None, "2000.00"),
}
LABELS = {
    "rep": ["Alex Rep", "Blair Rep", "all"],
    "source": ["ORGANIC_SEARCH", "PAID_SEARCH", "all"],
    "week": ["2026-W44 (2026-10-26)", "2026-W45 (2026-11-02)", "all"],
    "campaign": ["search", "webinar", "(none)", "all"],
}
# The table, as people read it: the rep grouping, section by section, row by row.
REP_TABLE = {
    "Speed to lead": [
        ["Alex Rep", "5", "5", "4m", "12m", "4m", "14h 12m", "80.0%"],
        ["Blair Rep", "3", "2", "8m", "8m", "8m", "2d 15h 8m", "0.0%"],
        ["all", "8", "7", "4m", "12m", "4m", "2d 15h 8m", "57.1%"],
    ],
    "SLA compliance": [
        ["Alex Rep", "4", "1", "0", "80.0%"],
        ["Blair Rep", "0", "3", "0", "0.0%"],
        ["all", "4", "4", "0", "50.0%"],
    ],
    "Follow-through": [
        ["Alex Rep", "9", "1.80", "1", "20.0%", "3", "2", "66.7%", "1"],
        ["Blair Rep", "2", "0.67", "1", "50.0%", "1", "0", "0.0%", "0"],
        ["all", "11", "1.38", "2", "28.6%", "4", "2", "50.0%", "1"],
    ],
    "Funnel": [
        ["Alex Rep", "5", "5", "1", "1", "1", "1", "4m", "16m", "1d 19h 40m", "1d", "3d"],
        ["Blair Rep", "3", "2", "1", "2", "1", "0", "8m", "22m", "1d 1h 30m", "0s", "-"],
        ["all", "8", "7", "2", "3", "2", "1", "4m", "16m", "1d 1h 57m", "0s", "3d"],
    ],
    "Premature disqualifications": [
        ["Lead3 Example", "Alex Rep", "2026-10-28 09:00", "1 of 3", "62515/3"],
    ],
}


def _report(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(["report", *args]) == 0
    return capsys.readouterr().out


def _expected(table: dict[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
    n = len(next(iter(table.values())))
    return [{k: v[i] for k, v in table.items()} for i in range(n)]


def _json_value(v: Any) -> Any:
    return float(v) if isinstance(v, str) else v


def _check_json(out: str, by: str, table: dict[str, tuple[Any, ...]]) -> None:
    body = json.loads(out)
    groups = [*body["groups"], body["total"]]
    assert [g["label"] for g in groups] == LABELS[by]
    for group, expected in zip(groups, _expected(table), strict=True):
        got = {k: group[k] for k in expected}
        assert got == {k: _json_value(v) for k, v in expected.items()}, group["label"]


def _check_csv(out: str, by: str, table: dict[str, tuple[Any, ...]]) -> None:
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r[by] for r in rows] == LABELS[by]
    for row, expected in zip(rows, _expected(table), strict=True):
        got = {k: row[k] for k in expected}
        assert got == {k: "" if v is None else str(v) for k, v in expected.items()}, row[by]


def _table_sections(out: str) -> dict[str, list[list[str]]]:
    sections: dict[str, list[list[str]]] = {}
    current = None
    for line in out.splitlines():
        if current is None or not line.strip():
            current = line.strip() if line.strip() in (*REP_TABLE, "none") else None
            if current:
                sections[current] = []
            continue
        cells = re.split(r"\s{2,}", line.strip())
        if set(line.strip()) <= {"-", " "} or cells[0] in ("rep", "lead"):
            continue
        sections[current].append(cells)
    return sections


@pytest.fixture
def history(engine: Engine, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    play(engine)
    costs = tmp_path / "costs.csv"
    costs.write_text(COSTS)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("SLA_BOT_RULES_DIR", str(RULES))
    return costs


def test_the_report_reproduces_the_hand_computed_history(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for by, table in (("rep", REP), ("source", SOURCE), ("week", WEEK)):
        _check_json(_report(capsys, "--by", by, *WINDOW, "--format", "json"), by, table)
        _check_csv(_report(capsys, "--by", by, *WINDOW, "--format", "csv"), by, table)
    sections = _table_sections(_report(capsys, "--by", "rep", *WINDOW))
    assert sections == REP_TABLE
    for fmt, check in (("json", _check_json), ("csv", _check_csv)):
        out = _report(capsys, "--by", "campaign", *WINDOW, "--costs", str(history), "--format", fmt)
        check(out, "campaign", CAMPAIGN)
    premature = json.loads(_report(capsys, *WINDOW, "--format", "json"))
    assert premature["premature_disqualifications"] == [
        {
            "portal_id": 62515,
            "contact_id": 3,
            "name": "Lead3 Example",
            "rep": "Alex Rep",
            "at": "2026-10-28T13:00:00+00:00",
            "touches": 1,
            "min_touches": 3,
        }
    ]


def test_report_leads_lists_the_leads_behind_a_number(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    args = ["report", "leads", "--by", "rep", "--group", "1002", "--metric", "breached"]
    assert main([*args, *WINDOW, "--format", "json"]) == 0
    leads = json.loads(capsys.readouterr().out)
    assert [(lead["object_id"], lead["result"]) for lead in leads] == [
        (2, "breached"),
        (4, "breached"),
        (6, "breached"),
    ]
    assert leads[1]["wall_seconds"] == 227280 and leads[1]["started_at"].endswith("+00:00")
    assert main(["report", "leads", "--metric", "premature_dq", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("62515,3,Lead3 Example,Alex Rep")
    assert main(["report", "leads", "--metric", "nonsense"]) == 2
    assert "unknown metric 'nonsense'" in capsys.readouterr().err
