"""Acceptance: SIGKILL `sla-bot serve` mid-stream; no acknowledged event is lost."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests
from sqlalchemy import select

from sla_bot.db.engine import make_engine
from sla_bot.db.schema import webhook_batches, webhook_events
from tests.service_process import ServiceProcess, free_port
from tests.signing import SECRET, batch, event, signed_headers

RULES = Path(__file__).resolve().parents[1] / "rules"


def _post(url: str, n: int) -> tuple[int, int]:
    events = [event(n * 100 + i, object_id=n * 100 + i) for i in range(25)]
    body = batch(events)
    headers = signed_headers(body, now=datetime.now(UTC), url=url + "/webhooks/hubspot")
    try:
        r = requests.post(url + "/webhooks/hubspot", data=body, headers=headers, timeout=10)
    except requests.RequestException:
        return n, 0
    return n, r.status_code


def test_sigkill_loses_no_acknowledged_event(db_url: str, tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": db_url,
        "HUBSPOT_CLIENT_SECRET": SECRET,
        "SLA_BOT_WEB_WORKERS": "2",
        "SLA_BOT_RULES_DIR": str(RULES),
    }
    service = ServiceProcess("serve", env, tmp_path, free_port()).start()
    acknowledged: set[int] = set()
    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            futures = [pool.submit(_post, service.url, n) for n in range(60)]
            for done, future in enumerate(futures):
                n, status = future.result()
                if status == 200:
                    acknowledged.add(n)
                if done == 30:
                    service.kill()  # mid-stream: later requests fail or never get answered
        assert 25 <= len(acknowledged) < 60
        service.start()
        engine = make_engine(db_url)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the restarted worker splits the stored batches
            with engine.connect() as conn:
                pending = conn.execute(
                    select(webhook_batches.c.id).where(webhook_batches.c.processed_at.is_(None))
                ).first()
            if pending is None:
                break
            time.sleep(0.2)
        with engine.connect() as conn:
            bodies = conn.execute(select(webhook_batches.c.body)).scalars().all()
            objects = set(conn.execute(select(webhook_events.c.object_id)).scalars().all())
        engine.dispose()
        stored_batches = {json.loads(b)[0]["objectId"] // 100 for b in bodies}
        assert acknowledged <= stored_batches
        expected = {n * 100 + i for n in acknowledged for i in range(25)}
        assert expected <= objects
        assert len(objects) == 25 * len(stored_batches)
    finally:
        service.stop()
