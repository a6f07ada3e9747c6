"""`sla-bot rules check|simulate` as a user runs them: exit codes and exact output."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from sla_bot.rules.cli import register
from tests.rules.util import BASE, LEAD, POLICY, write


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="sla-bot")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["rules", *argv])
    return int(args.func(args))


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    return write(tmp_path / "rules", {"rules.yaml": BASE + POLICY})


@pytest.fixture
def lead_file(tmp_path: Path) -> Path:
    path = tmp_path / "lead.json"
    path.write_text(json.dumps(LEAD), encoding="utf-8")
    return path


def test_check_ok(rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("check", str(rules_dir)) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK {rules_dir}: 1 file, 1 calendars, 1 teams (3 members), 1 policies")


def test_check_errors_one_per_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path / "bad", {"a.yaml": BASE.replace("America/New_York", "America/Nowhere")})
    assert run("check", str(bad)) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"{bad}/a.yaml:1:1: no routing block: without one every lead is ignored",
        f"{bad}/a.yaml:5:15: unknown time zone 'America/Nowhere' (expected e.g. America/New_York)",
    ]
    assert captured.err == f"2 errors in {bad}\n"


def test_check_uses_the_environment_variable(
    rules_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SLA_BOT_RULES_DIR", str(rules_dir))
    assert run("check") == 0
    assert str(rules_dir) in capsys.readouterr().out


def test_simulate_acceptance_text(
    rules_dir: Path, lead_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("simulate", "--lead", str(lead_file), "--dir", str(rules_dir)) == 0
    out = capsys.readouterr().out
    assert "Policy:   demo\n" in out
    assert "rule 'demo' matched (lead_source == demo_request (value: 'demo_request'))" in out
    assert "Owner:    Alex (owner id 101)\n" in out
    assert "Calendar: ny (America/New_York)\n" in out
    assert "Clock:    starts 2027-01-15 22:55 UTC = Fri 2027-01-15 17:55 EST\n" in out
    breach = next(line for line in out.splitlines() if "first_touch.breach" in line)
    assert breach.startswith("2027-01-19 13:25 UTC  Tue 2027-01-19 08:25 EST  first_touch.breach")
    assert "DM manager Mia Manager" in out
    assert "reassign round robin to: Blair (skipping Casey: out of office until 2027-01-31)" in out
    assert "post to #sales" in out


def test_simulate_acceptance_json(
    rules_dir: Path, lead_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["simulate", "--lead", str(lead_file), "--dir", str(rules_dir), "--json"]
    assert run(*argv, "--touches", "2027-01-19T13:30:00Z,2027-01-20T15:00:00Z:connect") == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["policy"], data["calendar"], data["timezone"]) == (
        "demo",
        "ny",
        "America/New_York",
    )
    steps = {s["key"]: s for s in data["steps"]}
    assert steps["first_touch.breach"]["due_at"] == "2027-01-19T13:25:00+00:00"
    assert steps["first_touch.breach"]["detail"]["late_by_seconds"] == 300
    assert steps["ladder.2"]["state"] == "cancelled"
    assert [t["connect"] for t in data["touches"]] == [False, True]
    assert data["status"] == "connected"


def test_simulate_at_a_moment(
    rules_dir: Path, lead_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["simulate", "--lead", str(lead_file), "--dir", str(rules_dir), "--json"]
    assert run(*argv, "--at", "2027-01-19T13:30:00Z") == 0
    states = {s["key"]: s["state"] for s in json.loads(capsys.readouterr().out)["steps"]}
    assert (states["ladder.1"], states["ladder.2"]) == ("fired", "pending")


def test_simulate_portal_and_hubspot_shape(
    tmp_path: Path, rules_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lead = tmp_path / "hubspot.json"
    lead.write_text(json.dumps({"portalId": 62515, "properties": LEAD}), encoding="utf-8")
    assert run("simulate", "--lead", str(lead), "--dir", str(rules_dir), "--json") == 0
    assert json.loads(capsys.readouterr().out)["portal_id"] == 62515


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--touches", "2027-01-19T13:30:00"], "has no time zone"),
        (["--at", "tomorrow"], "is not an ISO time"),
    ],
)
def test_simulate_bad_input(
    rules_dir: Path,
    lead_file: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    assert run("simulate", "--lead", str(lead_file), "--dir", str(rules_dir), *extra) == 2
    assert message in capsys.readouterr().err


def test_simulate_with_invalid_rules(
    tmp_path: Path, lead_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path / "bad", {"a.yaml": "policies: [\n"})
    assert run("simulate", "--lead", str(lead_file), "--dir", str(bad)) == 1
    assert f"{bad}/a.yaml:2:1: YAML:" in capsys.readouterr().err
