"""Fault test (real processes, loopback): SIGKILL a worker while it holds claimed Slack rows -
some posted with the answer lost, some held mid-request - then restart it. Every nudge goes out
exactly once, within seconds of the restart (leases are 10 s and renewed, not 2 minutes).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from integrations.slack.deliverer import correlation
from integrations.slack.fake import FakeSlack
from sla_bot.db.schema import outbox
from tests.engine.processes import WorkerProcess
from tests.fixtures_slack import SLACK_TEST_TOKEN
from tests.slack.helpers import add_lead, queue

RULES = Path(__file__).resolve().parents[2] / "rules"
NUDGES, REPS = 40, 20
RECOVERY = 15.0  # seconds after the restart, the acceptance bound


def _sent(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(outbox).where(outbox.c.status == "sent")
            ).scalar_one()
        )


def _claimed(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(outbox)
                .where(
                    outbox.c.status == "pending",
                    outbox.c.attempts > 0,
                    outbox.c.next_attempt_at > datetime.now(UTC),
                )
            ).scalar_one()
        )


def _until(check: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_sigkill_with_claimed_rows_then_restart_delivers_each_once_quickly(
    fake_slack: FakeSlack, engine: Engine, db_url: str, tmp_path: Path
) -> None:
    fake_slack.reset(now=time.time)
    for i in range(REPS):
        fake_slack.add_user(f"U0REP{i:05d}", f"rep{i}@example.com")
    now = datetime.now(UTC)
    keys = []
    for n in range(NUDGES):
        lead = add_lead(engine, now, object_id=20_000 + n, owner=str(n % REPS))
        rep = {"role": "owner", "email": f"rep{n % REPS}@example.com", "name": f"Rep {n % REPS}"}
        keys.append(f"lead:{lead}:assigned")
        queue(engine, lead, now, keys[-1], recipient=rep)
    env = {
        "DATABASE_URL": db_url,
        "SLA_BOT_RULES_DIR": str(RULES),
        "SLA_BOT_LOG_LEVEL": "WARNING",
        "SLACK_BOT_TOKEN": SLACK_TEST_TOKEN,
        "SLACK_API_BASE_URL": fake_slack.base_url,
    }
    # The first 6 posts are made, but their answers never come back before the kill.
    fake_slack.delay_next(6, 30.0, method="chat.postMessage")
    worker = WorkerProcess(env, tmp_path).start()
    try:
        assert _until(lambda: len(fake_slack.calls_to("chat.postMessage")) >= 6, 30), (
            worker.log.read_text()[-3000:]
        )
        fake_slack.pause()  # every other request now hangs before Slack acts on it
        assert _until(lambda: _claimed(engine) >= 10, 10)
        worker.kill()
        claimed_at_kill = _claimed(engine)
        fake_slack.resume()  # the dead worker's held requests are carried out late
        restarted = time.monotonic()
        worker = WorkerProcess(env, tmp_path, name="worker-2").start()
        assert _until(lambda: _sent(engine) == NUDGES, 30), worker.log.read_text()[-3000:]
        recovery = time.monotonic() - restarted
    finally:
        fake_slack.resume()
        worker.stop()

    posted = Counter(
        m["metadata"]["event_payload"]["key"]
        for m in fake_slack.all_messages()
        if (m.get("metadata") or {}).get("event_type") == "sla_bot_message"
    )
    assert posted == Counter({correlation(k): 1 for k in keys})
    print(
        f"\nsigkill: {claimed_at_kill} claimed at the kill; all sent {recovery:.1f} s after restart"
    )
    assert claimed_at_kill >= 6
    assert recovery <= RECOVERY
