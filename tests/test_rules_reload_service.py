"""Acceptance: edit rule files while `sla-bot serve` runs; a broken edit keeps the old rules."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import requests

from tests.service_process import ServiceProcess, free_port, wait_for
from tests.signing import SECRET

SHIPPED = Path(__file__).resolve().parents[1] / "rules" / "default.yaml"


def _ready(url: str) -> tuple[int, dict[str, Any]]:
    r = requests.get(url + "/readyz", timeout=5)
    return r.status_code, r.json()


def test_edits_apply_within_seconds_and_broken_edits_are_refused(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(SHIPPED, rules / "default.yaml")
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "HUBSPOT_CLIENT_SECRET": SECRET,
        "SLA_BOT_WEB_WORKERS": "1",
        "SLA_BOT_RULES_DIR": str(rules),
    }
    service = ServiceProcess("serve", env, tmp_path, free_port()).start()
    try:
        status, body = _ready(service.url)
        assert status == 200 and body["checks"]["rules"]["status"] == "ok"
        first = body["checks"]["rules"]["version"]

        text = (rules / "default.yaml").read_text()
        (rules / "default.yaml").write_text(text + "\n# a harmless edit\n")
        changed = wait_for(
            lambda: _ready(service.url)[1]["checks"]["rules"].get("version") != first
        )
        assert changed, "the edit was not picked up"
        second = _ready(service.url)[1]["checks"]["rules"]["version"]

        (rules / "default.yaml").write_text(text + "\npolices: {}\n")  # a typo'd top-level key
        refused = wait_for(lambda: _ready(service.url)[1]["checks"]["rules"].get("errors"))
        assert refused, "the broken edit was not reported"
        status, body = _ready(service.url)
        assert status == 200  # the last good rules are still in force
        assert body["checks"]["rules"]["version"] == second
        assert "previous rules in force" in body["checks"]["rules"]["status"]
        assert any(
            "default.yaml:" in e and "polices" in e for e in body["checks"]["rules"]["errors"]
        )
        metrics = requests.get(service.url + "/metrics", timeout=5).text
        refusals = [
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("sla_bot_rules_reload_errors_total ")
        ]
        assert refusals and refusals[0] >= 1  # web and worker processes each count theirs

        (rules / "default.yaml").write_text(text)
        recovered = wait_for(lambda: "errors" not in _ready(service.url)[1]["checks"]["rules"])
        assert recovered
        assert _ready(service.url)[1]["checks"]["rules"]["version"] == first
    finally:
        service.stop()


def _post_contact(url: str, contact_id: int, properties: dict[str, str]) -> None:
    import json
    from datetime import UTC, datetime

    from tests.signing import signed_headers

    body = json.dumps(
        {
            "objectId": contact_id,
            "portalId": 62515,
            "properties": {"hs_object_id": str(contact_id), **properties},
        }
    ).encode()
    target = url + "/webhooks/hubspot"
    headers = signed_headers(body, now=datetime.now(UTC), version="v2", url=target)
    assert requests.post(target, data=body, headers=headers, timeout=5).status_code == 200


def _policy_of(db: Path, contact_id: int) -> tuple[str, str | None] | None:
    import sqlite3

    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT status, policy FROM leads WHERE portal_id = 62515 AND object_id = ?",
            (contact_id,),
        ).fetchone()
    return None if row is None else (row[0], row[1])


def test_new_leads_follow_an_edited_policy_within_seconds(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    text = SHIPPED.read_text()
    assert "    fallback: ignore" in text
    (rules / "default.yaml").write_text(text)
    db = tmp_path / "db.sqlite"
    env = {
        "DATABASE_URL": f"sqlite:///{db}",
        "HUBSPOT_CLIENT_SECRET": SECRET,
        "SLA_BOT_WEB_WORKERS": "1",
        "SLA_BOT_RULES_DIR": str(rules),
    }
    service = ServiceProcess("serve", env, tmp_path, free_port()).start()
    try:
        webinar = {
            "lead_source": "webinar",
            "hubspot_owner_id": "1001",
            "createdate": "2026-11-20T15:00:00Z",
        }
        _post_contact(service.url, 1, webinar)
        before = wait_for(lambda: _policy_of(db, 1))
        assert before is not None and before[1] is None  # no rule matched: ignored

        (rules / "default.yaml").write_text(
            text.replace("    fallback: ignore", "    fallback: inbound_demo")
        )
        started = time.monotonic()
        # The worker process (which decides policies) logs when the new rules are in force.
        assert wait_for(lambda: "now in force" in service.log.read_text())
        _post_contact(service.url, 2, webinar)
        after = wait_for(lambda: _policy_of(db, 2))
        assert after is not None and after[1] == "inbound_demo", after
        assert time.monotonic() - started < 15
        assert _policy_of(db, 1) == before  # a running lead keeps what it started under
    finally:
        service.stop()
