"""deploy/: the Prometheus alert rules and the Grafana dashboard are valid and only use metrics
the service exposes. With `promtool` (Debian: apt-get install prometheus) the rules are checked
and unit-tested by Prometheus itself, and every dashboard query is parsed by it; without it the
checks are structural, and the test says so.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from sla_bot import metrics
from sla_bot.clock import FrozenClock
from sla_bot.metrics_db import DatabaseCollector

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "sla-bot.json"
PROMTOOL = shutil.which("promtool")
REQUIRED_ALERTS = {
    "SlaBotWorkerStalled",
    "SlaBotOutboxBacklogAgeing",
    "SlaBotDeliveryFailures",
    "SlaBotRulesInvalid",
    "SlaBotBreachRateHigh",
}
METRIC = re.compile(r"\bsla_bot_[a-z_]+\b")
SUFFIXES = ("_bucket", "_sum", "_count")


def _exposed(engine: Engine, clock: FrozenClock) -> set[str]:
    """Every metric and sample name /metrics can show."""
    body, _ = metrics.render(DatabaseCollector(engine, clock, ttl=0))
    names: set[str] = set()
    for family in text_string_to_metric_families(body.decode()):
        names.add(family.name)
        names |= {s.name for s in family.samples}
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names |= {family.name + s for s in SUFFIXES}
    return names


def _dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] and board["title"] and board["panels"]
    queries = []
    for panel in board["panels"]:
        assert panel["title"] and panel["targets"], panel
        queries += [t["expr"] for t in panel["targets"]]
    return queries


def _rules() -> list[dict]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_alerts_and_dashboard_use_only_exposed_metrics(engine: Engine, clock: FrozenClock) -> None:
    exposed = _exposed(engine, clock)
    used = {m for q in _dashboard_queries() for m in METRIC.findall(q)}
    used |= {m for rule in _rules() for m in METRIC.findall(rule["expr"])}
    assert used and used <= exposed, sorted(used - exposed)


def test_alert_rules_say_what_is_wrong() -> None:
    rules = _rules()
    assert {r["alert"] for r in rules} >= REQUIRED_ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_checks_and_unit_tests_the_alert_rules() -> None:
    assert PROMTOOL is not None
    for args in (["check", "rules", ALERTS.name], ["test", "rules", "alerts.test.yml"]):
        done = subprocess.run(
            [PROMTOOL, *args], cwd=ALERTS.parent, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    rules = [
        {"record": f"dashboard:query_{i}", "expr": q.replace("$__rate_interval", "5m")}
        for i, q in enumerate(_dashboard_queries())
    ]
    for rule in rules:
        rule["expr"] = rule["expr"].replace("$policy", ".*")
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
