"""Process management: gunicorn for the web app, and `serve` = web + worker on one machine.

Children get PR_SET_PDEATHSIG so that if the parent is killed outright (SIGKILL, OOM), its
gunicorn workers and the worker process go too, instead of holding the port or the database.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from sla_bot.config import Settings
from sla_bot.rules.shared import SharedRules

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to signal this process when its parent dies (no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):  # exotic libc: run without the safety net
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


INSTANCE_ENV = "SLA_BOT_INSTANCE_DIR"  # set by `serve` and `web` for their own processes


@contextlib.contextmanager
def instance_dir() -> Iterator[Path]:
    """A private directory shared by the processes of this `serve` or `web`, removed at exit.

    It holds the instance's rules in force and its once-only announcements
    (sla_bot.rules.shared). Children (gunicorn workers, the worker process) inherit it.
    """
    existing = os.environ.get(INSTANCE_ENV)
    if existing:  # started by an instance (e.g. serve's worker process): share its directory
        yield Path(existing)
        return
    _remove_stale_instance_dirs()
    creator = os.getpid()
    path = Path(tempfile.mkdtemp(prefix=f"sla-bot-run-{creator}-"))
    os.environ[INSTANCE_ENV] = str(path)
    try:
        yield path
    finally:
        # gunicorn's web workers are forks that leave through this frame too (SystemExit):
        # only the process that made the directory may remove it.
        if os.getpid() == creator:
            os.environ.pop(INSTANCE_ENV, None)
            shutil.rmtree(path, ignore_errors=True)


def _remove_stale_instance_dirs() -> None:
    """Directories of instances killed outright (SIGKILL, OOM) could not remove themselves."""
    for stale in Path(tempfile.gettempdir()).glob("sla-bot-run-*-*"):
        pid = stale.name.split("-")[3]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def shared_rules() -> SharedRules | None:
    directory = os.environ.get(INSTANCE_ENV)
    return SharedRules(Path(directory)) if directory and Path(directory).is_dir() else None


def first_in_instance(event: str) -> bool:
    """True in one process per instance (every process when it runs on its own)."""
    shared = shared_rules()
    return shared is None or shared.first(event)


def port_problem(settings: Settings) -> str | None:
    """Say so at once if the port is taken, instead of gunicorn's five retries."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((settings.host, settings.port))
        except PermissionError:
            return (
                f"no permission to listen on port {settings.port}: set SLA_BOT_PORT to a port "
                "above 1023"
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (
                    f"{settings.host}:{settings.port} is already in use (another sla-bot, or "
                    f"another program): set SLA_BOT_PORT to a free port, e.g. "
                    f"SLA_BOT_PORT={settings.port + 1}"
                )
            return (
                f"cannot listen on {settings.host}:{settings.port}: {exc.strerror} (SLA_BOT_HOST)"
            )
    return None


class GunicornLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's own log lines go through our handler, so SLA_BOT_LOG_FORMAT=json covers them."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True


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
            # Threads keep more commits in flight per process, so they share WAL syncs
            # (docs/performance.md); sync workers (1 thread) have the best tail latency.
            "worker_class": "gthread" if self.settings.web_threads > 1 else "sync",
            "threads": self.settings.web_threads,
            "timeout": 30,
            "graceful_timeout": 20,
            "keepalive": 2,
            "accesslog": None,
            "post_fork": lambda _server, _worker: die_with_parent(),
            "logger_class": GunicornLogger,
            # gunicorn >= 24 opens a control socket, by default ~/.gunicorn/gunicorn.ctl: one
            # path for every instance on the machine, failing on a read-only home. Unused here.
            "control_socket_disable": True,
            **self.extra,
        }
        for key, value in options.items():
            if key in self.cfg.settings:  # older gunicorn lacks the control socket settings
                self.cfg.set(key, value)

    def load(self) -> Any:
        return self.app_factory()


def ensure_metrics_dir() -> None:
    """Multiprocess metrics need a fresh shared directory, set before prometheus is imported.

    In memory (/dev/shm) when there is one: every counter increment writes the process's
    mmapped file, and on a disk-backed file a write can wait for the kernel's writeback of
    that page (docs/performance.md).
    """
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import tempfile

        shm = "/dev/shm"
        where = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
        path = tempfile.mkdtemp(prefix="sla-bot-metrics-", dir=where)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
        # Removed when the process that made it exits; gunicorn's forked workers run atexit
        # handlers too (they leave by SystemExit), and must not remove it.
        atexit.register(_remove_if_mine, path, os.getpid())


def _remove_if_mine(path: str, creator: int) -> None:
    if os.getpid() == creator:
        shutil.rmtree(path, ignore_errors=True)


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
