"""SIGTERM and SIGINT stop a process cleanly however many arrive, and however fast.

`serve` stops its worker with SIGTERM and the worker's death signal sends another; Ctrl-C reaches
a whole process group. A handler that set the stop Event itself deadlocked (or, under a burst,
recursed until RecursionError) when a signal landed inside the previous handler.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from sla_bot.db.schema import webhook_events
from sla_bot.intake import store_batch
from sla_bot.splitter import split_pending
from tests.engine.processes import ROOT, WorkerProcess
from tests.signing import batch, event

WAITER = """
import threading
from sla_bot.shutdown import stop_on_signals
stop = threading.Event()
stop_on_signals(stop)
print("ready", flush=True)
stop.wait()
print("drained", flush=True)
"""


def _flood(proc: subprocess.Popen[bytes], sig: int, seconds: float = 3.0) -> int:
    """Send `sig` back to back until the process exits; its exit status, or -999 if it hung.
    One landing after the process has drained, while the interpreter finalizes (and has put the
    default handlers back), ends it with -sig: the callers check it drained first."""
    deadline = time.monotonic() + seconds
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            break
    try:
        return proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return -999


def test_a_burst_of_signals_sets_the_event_once_and_the_process_drains() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc = subprocess.Popen(
            [sys.executable, "-c", WAITER],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        status = _flood(proc, sig)
        out, err = proc.communicate()
        assert (out, err) == (b"drained\n", b"") and status in (0, -sig)


def _worker_env(db_url: str) -> dict[str, str]:
    """The shipped rules, and INFO logs: the tests wait for "worker started"/"stopped"."""
    return {
        "DATABASE_URL": db_url,
        "SLA_BOT_RULES_DIR": str(ROOT / "rules"),
        "SLA_BOT_LOG_LEVEL": "INFO",
        "SLA_BOT_LOG_FORMAT": "text",
    }


def test_the_worker_stops_cleanly_under_a_burst_of_sigterm(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    worker = WorkerProcess(_worker_env(db_url), tmp_path).start()
    assert worker.proc is not None
    try:
        deadline = time.monotonic() + 60
        while "worker started" not in worker.log.read_text() and time.monotonic() < deadline:
            assert worker.alive(), worker.log.read_text()[-3000:]
            time.sleep(0.05)
        status = _flood(worker.proc, signal.SIGTERM)
    finally:
        worker.stop()
    log = worker.log.read_text()
    assert "worker stopped" in log and "Traceback" not in log, log[-3000:]
    assert status in (0, -signal.SIGTERM), log[-3000:]


def _events(engine: Engine, *, pending: bool) -> int:
    done = webhook_events.c.processed_at
    with engine.connect() as conn:
        query = select(func.count()).select_from(webhook_events)
        return int(
            conn.execute(query.where(done.is_(None) if pending else done.is_not(None))).scalar()
        )


def test_a_stopping_worker_leaves_the_backlog_for_later(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    """A shutdown waits for the pass in progress, not for the whole backlog: `serve` and
    container runtimes allow a worker some seconds, then kill it. 20,000 new contacts take
    applying passes of 200 for a minute or more; a SIGTERM during the first ends the worker
    with most of them still pending (they are applied after the restart)."""
    now = datetime.now(UTC)
    for b in range(200):
        events = [event(b * 100 + j, object_id=b * 100 + j + 1) for j in range(100)]
        store_batch(
            engine,
            body=batch(events),
            source="webhooks_api",
            signature_version="v3",
            received_at=now,
        )
    while split_pending(engine, now=now, limit=50).batches:
        pass
    total = _events(engine, pending=True)
    assert total == 20_000
    worker = WorkerProcess(_worker_env(db_url), tmp_path).start()
    assert worker.proc is not None
    try:
        deadline = time.monotonic() + 60
        while _events(engine, pending=False) == 0 and time.monotonic() < deadline:
            assert worker.alive(), worker.log.read_text()[-3000:]
            time.sleep(0.05)
        worker.proc.send_signal(signal.SIGTERM)
        try:
            status = worker.proc.wait(60)
        except subprocess.TimeoutExpired:
            status = None
    finally:
        worker.stop()
    log = worker.log.read_text()
    assert status in (0, -signal.SIGTERM), log[-3000:]
    assert "worker stopped" in log, log[-3000:]
    assert _events(engine, pending=True) > total // 2, "the worker drained the backlog first"
