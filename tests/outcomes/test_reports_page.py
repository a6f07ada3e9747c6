"""/reports: the same numbers as the CLI, never open by default, CRM text escaped."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine

from sla_bot.cli import main
from sla_bot.db.schema import lead_outcomes
from sla_bot.leadqueue.query import QueueFilter, open_leads
from sla_bot.reports import formats
from tests.outcomes.history import RULES, play
from tests.outcomes.reports_app import SECRET_KEY, app_for, cells, services_for, signed

WINDOW = {"since": "2026-10-26", "until": "2026-11-09"}


@pytest.fixture
def played(engine: Engine) -> Engine:
    play(engine)
    return engine


def _get(client: Any, path: str, **params: Any) -> Any:
    return client.get(f"{path}?{urlencode(params)}")


def test_the_page_shows_the_numbers_the_cli_prints(
    played: Engine,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    services = services_for(played, db_url)
    client = app_for(services).test_client()
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("SLA_BOT_RULES_DIR", str(RULES))
    for by in ("rep", "source", "week", "campaign"):
        page = _get(client, "/reports", by=by, access=signed(services), **WINDOW)
        assert page.status_code == 200
        shown = cells(page.get_data(as_text=True))
        capsys.readouterr()
        args = ["report", "--by", by, "--since", WINDOW["since"], "--until", WINDOW["until"]]
        assert main([*args, "--format", "json"]) == 0
        cli = json.loads(capsys.readouterr().out)
        metrics = {m["key"]: m for m in cli["metrics"]}
        compared = 0
        for group in [*cli["groups"], {**cli["total"], "key": "*"}]:
            for key in metrics:
                for section in formats.SECTIONS_ORDER:
                    got = shown.get((section, group["key"], key))
                    if got is None:
                        continue
                    value = group[key]
                    expected = "" if value is None else value
                    assert (float(got[0]) if got[0] else "") == expected, (by, group, key)
                    compared += 1
        assert compared >= len(metrics) * (len(cli["groups"]) + 1), by
    # ... and the same text as the CLI's table (one cell that needs formatting, to be sure).
    page = _get(client, "/reports", by="rep", access=signed(services), **WINDOW)
    shown = cells(page.get_data(as_text=True))
    assert shown[("Speed to lead", "1002", "wall_p90_s")] == ("227280", "2d 15h 8m")
    assert shown[("SLA compliance", "*", "compliance_pct")] == ("50.0", "50.0%")


def test_reports_are_never_open_by_default(
    played: Engine, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    unconfigured = services_for(played, db_url)
    unconfigured = type(unconfigured)(
        settings=unconfigured.settings.model_copy(update={"secret_key": None}),
        engine=played,
        clock=unconfigured.clock,
        rules=unconfigured.rules,
    )
    assert app_for(unconfigured).test_client().get("/reports").status_code == 403
    services = services_for(played, db_url)
    client = app_for(services).test_client()
    good = signed(services, days=1)
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    caplog.set_level(logging.INFO)
    for access_value in (None, "", "v1.1.all.xyz", forged, "not-a-link"):
        params = {} if access_value is None else {"access": access_value}
        for path in ("/reports", "/reports/leads", "/reports/lead/62515/3"):
            response = _get(client, path, **params)
            assert response.status_code == 403, (path, access_value)
            assert "Lead3" not in response.get_data(as_text=True)
    assert _get(client, "/reports", access=good).status_code == 200
    services.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    assert _get(client, "/reports", access=good).status_code == 403  # expired
    logged = caplog.text
    assert "expired link" in logged and "bad signature" in logged
    assert good not in logged and forged not in logged and SECRET_KEY not in logged
    assert good.rsplit(".", 1)[1] not in logged


def test_a_token_opens_reports_and_a_portal_link_shows_only_its_portal(
    played: Engine, db_url: str
) -> None:
    token = "a-long-report-token-for-tests-0123456789"
    services = services_for(played, db_url, SLA_BOT_REPORTS_TOKEN=token)
    client = app_for(services).test_client()
    bearer = client.get("/reports", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 200
    assert client.get("/reports", headers={"Authorization": "Bearer nope"}).status_code == 403
    other = signed(services, portal=777)
    page = _get(client, "/reports", access=other, portal=62515).get_data(as_text=True)
    assert "portal 777" in page and "Lead" not in page.split("<h2>Premature", 1)[1]
    assert _get(client, "/reports/lead/62515/3", access=other).status_code == 403
    mine = signed(services, portal=62515)
    assert _get(client, "/reports/lead/62515/3", access=mine).status_code == 200


def test_crm_text_is_escaped_everywhere(played: Engine, db_url: str) -> None:
    evil = "<script>alert(1)</script> & <b>Co</b>"
    with played.begin() as conn:
        conn.execute(
            update(lead_outcomes)
            .where(lead_outcomes.c.object_id == 3)
            .values(name=evil, owner_name=evil, campaign=evil)
        )
    services = services_for(played, db_url)
    client = app_for(services).test_client()
    key = signed(services)
    pages = [
        _get(client, "/reports", access=key, by="campaign"),
        _get(client, "/reports/leads", access=key, metric="premature_dq", all="1"),
        _get(client, "/reports/lead/62515/3", access=key),
    ]
    for page in pages:
        html = page.get_data(as_text=True)
        assert page.status_code == 200
        assert "<script>" not in html and "<b>Co</b>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;Co&lt;/b&gt;" in html
        assert page.headers["Referrer-Policy"] == "no-referrer"
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_report_link_prints_a_url_that_opens_the_page(
    played: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("SLA_BOT_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("SLA_BOT_PUBLIC_URL", "https://sla.example.com/webhooks/hubspot")
    assert main(["report", "link", "--by", "week", "--expires", "2d", "--portal", "62515"]) == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith("https://sla.example.com/reports?by=week&portal=62515&access=v1.")
    services = services_for(played, db_url)
    response = app_for(services).test_client().get(url.split("sla.example.com", 1)[1])
    assert response.status_code == 200
    assert main(["report", "link", "--expires", "90d"]) == 2  # longer than a link may live
    assert "at most 31 days" in capsys.readouterr().err


def test_costs_file_errors_name_file_line_and_column(
    engine: Engine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    db_url: str,
) -> None:
    from sla_bot.reports import costs
    from sla_bot.rules.errors import RulesInvalid

    bad = tmp_path / "campaign-costs.csv"
    bad.write_text(
        "campaign,from,to,spend\n"
        "webinar,2026-10-01,2026-10-31,abc\n"
        "webinar,2026-10-15,2026-09-01,10\n"
        ",2026-11-01,2026-11-30,10\n"
        "search,2026-10-01,2026-10-31,100\n"
        "search,2026-10-31,2026-11-05,100\n"
    )
    with pytest.raises(RulesInvalid) as caught:
        costs.load(bad)
    assert [str(e) for e in caught.value.errors] == [
        f"{bad}:2:31: spend 'abc': expected an amount such as 1200.50",
        f"{bad}:3:20: 'to' 2026-09-01 is before 'from' 2026-10-15",
        f"{bad}:4:1: campaign is empty",
        f"{bad}:6:1: search: 2026-10-31..2026-11-05 overlaps the period on line 5 "
        "(2026-10-01..2026-10-31); its spend would count twice",
    ]
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("SLA_BOT_RULES_DIR", str(RULES))
    assert main(["report", "--by", "campaign", "--costs", str(bad)]) == 2
    assert f"{bad}:2:31: spend 'abc'" in capsys.readouterr().err


def test_an_empty_database_reports_nothing_without_failing(engine: Engine, db_url: str) -> None:
    services = services_for(engine, db_url)
    client = app_for(services).test_client()
    for by in ("rep", "week", "campaign"):
        page = _get(client, "/reports", by=by, access=signed(services))
        assert page.status_code == 200
        assert "No leads in this window." in page.get_data(as_text=True)
    body = _get(client, "/reports", format="json", access=signed(services)).get_json()
    assert body["groups"] == [] and body["total"]["leads"] == 0


def test_the_page_lists_the_open_leads_like_leads_list(played: Engine, db_url: str) -> None:
    services = services_for(played, db_url)
    client = app_for(services).test_client()
    html = _get(client, "/reports", access=signed(services)).get_data(as_text=True)
    queue = html.split('<section id="queue">', 1)[1].split("</section>", 1)[0]
    shown = re.findall(r"/record/0-1/(\d+)\"", queue)
    with played.connect() as conn:
        expected = open_leads(conn, services.rules.current(), services.clock.now(), QueueFilter())
    assert expected, "the played history leaves open leads"
    assert shown == [str(i.contact_id) for i in expected]
    other = _get(client, "/reports", access=signed(services, portal=777)).get_data(as_text=True)
    assert "No open leads match." in other.split('<section id="queue">', 1)[1]
