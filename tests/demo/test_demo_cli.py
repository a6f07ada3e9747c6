"""`sla-bot demo` end to end: the first nudge arrives, and stopping leaves nothing behind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from tests.demo.running import DemoProcess, port_open, processes_mentioning


def test_first_nudge_arrives_and_nothing_is_left_behind(tmp_path: Path) -> None:
    demo = DemoProcess(tmp_path, "--exit-after-first-nudge", "--duration", "60", "--leads", "1")
    try:
        service = demo.url("service")
        page = demo.url("page")
        code = demo.wait(90)
    finally:
        demo.stop()
    out = demo.output
    assert code == 0, out
    # who, what and when (the recipient's local time: Alex is in New York)
    assert re.search(r"\d\d:\d\d:\d\d E[SD]T\s+DM Alex Rep\s+.*Ada Lovelace", out), out
    after = float(re.search(r"First message delivered ([\d.]+) s after", out).group(1))
    assert after < 60, out
    assert not port_open(service) and not port_open(page)
    assert demo.leftovers() == []
    assert processes_mentioning("sla_bot.demo.service") == []


def test_ctrl_c_stops_everything(tmp_path: Path) -> None:
    demo = DemoProcess(tmp_path, "--leads", "0")
    try:
        service = demo.url("service")
        page = demo.url("page")
        assert requests.get(service + "/readyz", timeout=5).status_code == 200
        assert "sla-bot demo" in requests.get(page, timeout=5).text
        assert demo.interrupt() == 130
    finally:
        demo.stop()
    assert "stopped" in demo.output
    assert not port_open(service) and not port_open(page)
    assert demo.leftovers() == []
    assert processes_mentioning("sla_bot.demo.service") == []


def test_bad_speed_and_missing_rules_are_explained(tmp_path: Path) -> None:
    demo = DemoProcess(tmp_path, "--speed", "5000")
    assert demo.wait() == 2
    assert "--speed must be between 1 and 600" in demo.output
    other = tmp_path / "other"
    other.mkdir()
    demo = DemoProcess(other, "--rules", str(tmp_path / "nowhere"))
    assert demo.wait() == 1
    assert "nowhere" in demo.output


@pytest.mark.parametrize("speed", ["60"])
def test_users_rules_play_on_a_faster_clock(tmp_path: Path, speed: str) -> None:
    """The shipped rules at 60x: the demo builds owners, Slack users and routing from them."""
    rules = Path(__file__).resolve().parents[2] / "rules"
    demo = DemoProcess(tmp_path, "--rules", str(rules), "--speed", speed, "--duration", "1")
    try:
        assert demo.wait(90) == 0, demo.output
    finally:
        demo.stop()
    out = demo.output
    assert "60x faster than real time" in out
    assert re.search(r"Lead Ada Lovelace .*owner (Alex|Blair|Casey) Rep.*answered 200", out), out
    assert demo.leftovers() == []
