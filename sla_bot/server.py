"""Process management: gunicorn for the web app, and `serve` = web + worker on one machine.

Children get PR_SET_PDEATHSIG so that if the parent is killed outright (SIGKILL, OOM), its
gunicorn workers and the worker process go too, instead of holding the port or the database.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from gunicorn.app.base import BaseApplication

from sla_bot.config import Settings

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to signal this process when its parent dies (no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):  # exotic libc: run without the safety net
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


class WebServer(BaseApplication):  # type: ignore[misc]
    """gunicorn with sync workers: the receiver's best tail latency (docs/architecture.md)."""

    def __init__(self, settings: Settings, app_factory: Any, extra: dict[str, Any] | None = None):
        self.settings = settings
        self.app_factory = app_factory
        self.extra = extra or {}
        super().__init__()

    def load_config(self) -> None:
        options = {
            "bind": f"{self.settings.host}:{self.settings.port}",
            "workers": self.settings.web_workers,
            "worker_class": "sync",
            "timeout": 30,
            "graceful_timeout": 20,
            "keepalive": 2,
            "accesslog": None,
            "post_fork": lambda _server, _worker: die_with_parent(),
            **self.extra,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.app_factory()


def ensure_metrics_dir() -> None:
    """Multiprocess metrics need a fresh shared directory, set before prometheus is imported."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sla-bot-metrics-")


def _worker_child_setup() -> None:
    die_with_parent()
    # Sharing cores with the web server: webhook answers are latency-critical, the worker's
    # backlog is not, so the kernel should prefer the web processes when both want CPU.
    os.nice(10)


def start_worker_process(argv: Sequence[str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        list(argv or [sys.executable, "-m", "sla_bot", "worker"]),
        preexec_fn=_worker_child_setup,  # noqa: PLW1509 - prctl and nice only
    )


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
