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
from pathlib import Path

from sqlalchemy.engine import Engine

from tests.engine.processes import ROOT, WorkerProcess

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


def test_the_worker_stops_cleanly_under_a_burst_of_sigterm(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": db_url,
        "SLA_BOT_RULES_DIR": str(ROOT / "rules"),
        "SLA_BOT_LOG_LEVEL": "INFO",
        "SLA_BOT_LOG_FORMAT": "text",
    }
    worker = WorkerProcess(env, tmp_path).start()
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
