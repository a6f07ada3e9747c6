"""Acceptance: breaching one lead moves the breach counter on /metrics of a running `serve`, and
of `web` + `worker` run as separate processes (real processes, real sockets, signed webhooks).

The lead is created ten minutes ago under a one-minute wall-clock target, so the worker's first
sweep breaches it: the test waits for processes, never for an SLA to run out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.engine.processes import WorkerProcess
from tests.outcomes.history import RULES
from tests.service_process import ServiceProcess, free_port, wait_for
from tests.signing import SECRET, URL, signed_headers

BREACHES = 'sla_bot_first_touch_breaches_total{policy="inbound"}'


def _rules(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    text = (RULES / "rules.yaml").read_text().replace("within: 5 business minutes", "within: 1m")
    (rules / "rules.yaml").write_text(text)
    return rules


def _env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "HUBSPOT_CLIENT_SECRET": SECRET,
        "SLA_BOT_PUBLIC_URL": URL,
        "SLA_BOT_WEB_WORKERS": "2",
        "SLA_BOT_RULES_DIR": str(_rules(tmp_path)),
        "SLA_BOT_WORKER_INTERVAL_SECONDS": "0.5",
    }


def _breach_one_lead(base: str, contact: int) -> None:
    created = datetime.now(UTC) - timedelta(minutes=10)
    ms = int(created.timestamp() * 1000)

    def event(n: int, kind: str, **extra: Any) -> dict[str, Any]:
        return {
            "eventId": 100 + n,
            "subscriptionId": 1,
            "portalId": 62515,
            "occurredAt": ms,
            "subscriptionType": kind,
            "attemptNumber": 0,
            "objectId": contact,
            "changeSource": "CRM",
            **extra,
        }

    body = json.dumps(
        [
            event(0, "contact.creation"),
            event(1, "contact.propertyChange", propertyName="lead_source", propertyValue="inbound"),
            event(
                2, "contact.propertyChange", propertyName="hubspot_owner_id", propertyValue="1001"
            ),
        ]
    ).encode()
    headers = signed_headers(body, now=datetime.now(UTC))
    response = requests.post(f"{base}/webhooks/hubspot", data=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text


def _breaches(base: str) -> float:
    text = requests.get(f"{base}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(BREACHES):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db.sqlite'}"


def test_breach_counter_on_metrics_of_serve(tmp_path: Path, database_url: str) -> None:
    service = ServiceProcess("serve", _env(tmp_path, database_url), tmp_path, free_port()).start()
    try:
        assert _breaches(service.url) == 0
        _breach_one_lead(service.url, 7001)
        assert wait_for(lambda: _breaches(service.url) == 1, timeout=60), _breaches(service.url)
        # Every gunicorn worker answers the same (the counter lives in the database).
        assert {_breaches(service.url) for _ in range(4)} == {1.0}
    finally:
        service.stop()


@pytest.fixture
def separate(tmp_path: Path, database_url: str) -> Iterator[tuple[ServiceProcess, WorkerProcess]]:
    env = _env(tmp_path, database_url)
    upgrade = subprocess.run(
        [sys.executable, "-m", "sla_bot", "db", "upgrade"],
        env={**os.environ, **env},
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    assert upgrade.returncode == 0, upgrade.stderr.decode()[-2000:]
    web = ServiceProcess("web", env, tmp_path, free_port()).start()
    worker = WorkerProcess(env, tmp_path).start()
    try:
        yield web, worker
    finally:
        worker.stop()
        web.stop()


def test_breach_counter_on_metrics_of_web_with_a_separate_worker(
    separate: tuple[ServiceProcess, WorkerProcess],
) -> None:
    web, worker = separate
    assert _breaches(web.url) == 0
    _breach_one_lead(web.url, 7002)
    moved = wait_for(lambda: _breaches(web.url) == 1, timeout=60)
    assert moved, worker.log.read_text()[-2000:]

    # The worker's heartbeat (every few seconds) reaches the web process's /metrics too.
    def beat() -> list[str]:
        text = requests.get(f"{web.url}/metrics", timeout=10).text
        return [ln for ln in text.splitlines() if ln.startswith("sla_bot_worker_last_heartbeat")]

    seen = wait_for(beat, timeout=30)
    assert seen and abs(float(seen[0].split()[-1]) - time.time()) < 120
