"""Process management: gunicorn for the web app, and `serve` = web + worker on one machine.

Children get PR_SET_PDEATHSIG so that if the parent is killed outright (SIGKILL, OOM), its
gunicorn workers and the worker process go too, instead of holding the port or the database.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import gc
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
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
            _remove_instance(path)


def _remove_instance(path: Path) -> None:
    metrics = path / "metrics"
    if metrics.is_symlink():  # its metrics live in /dev/shm
        shutil.rmtree(metrics.resolve(), ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)


def _remove_stale_instance_dirs() -> None:
    """Directories of instances killed outright (SIGKILL, OOM) could not remove themselves."""
    for stale in Path(tempfile.gettempdir()).glob("sla-bot-run-*-*"):
        pid = stale.name.split("-")[3]
        if pid.isdigit() and not _alive(int(pid)):
            _remove_instance(stale)
    if SHM.is_dir():  # metrics of an instance whose directory went another way
        for stale in SHM.glob("sla-bot-metrics-*-*"):
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
            "child_exit": lambda _server, worker: process_gone(worker.pid),
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
        app = self.app_factory()
        # Everything built so far (imported modules, the app, its services) lives as long as
        # the process: keep it out of the cyclic collector's full passes, which otherwise walk
        # the whole heap every few thousand requests.
        gc.freeze()
        return app


SHM = Path("/dev/shm")


def use_metrics_dir(run_dir: Path) -> None:
    """Multiprocess metrics need a fresh shared directory, set before prometheus is imported.

    In memory (/dev/shm) when there is one: every counter increment writes the process's
    mmapped file, and on a disk-backed file a write can wait for the kernel's writeback of that
    page (docs/performance.md). Linked from the instance directory, so it goes when the instance
    does (at exit, or at the next start after a SIGKILL). A PROMETHEUS_MULTIPROC_DIR set by the
    operator is theirs.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    link = run_dir / "metrics"
    if SHM.is_dir() and os.access(SHM, os.W_OK):
        path = Path(tempfile.mkdtemp(prefix=f"sla-bot-metrics-{os.getpid()}-", dir=SHM))
        link.symlink_to(path, target_is_directory=True)
    else:
        path = link
        path.mkdir(exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def process_gone(pid: int) -> None:
    """Drop a dead process's live gauges from the multiprocess metrics (gunicorn child_exit)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


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


class WorkerSupervisor:
    """`serve`'s worker process, started again whenever it dies (crash, OOM kill, `kill -9`).

    Webhooks keep being acknowledged while it is down (they are stored), so it must come back:
    after `backoff` seconds, doubling up to `max_backoff` while it keeps dying within
    `steady_after` seconds of starting. gunicorn's arbiter reaps every child, this one
    included, so its exit status is often unknown; that it exited is all that matters here.
    """

    def __init__(
        self,
        argv: Sequence[str] | None = None,
        *,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        steady_after: float = 60.0,
    ) -> None:
        self.argv = argv
        self.backoff, self.max_backoff, self.steady_after = backoff, max_backoff, steady_after
        self.restarts = 0
        self._owner = os.getpid()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._run, name="worker-supervisor", daemon=True)

    def start(self) -> WorkerSupervisor:
        self._thread.start()
        return self

    def _spawn(self) -> subprocess.Popen[bytes] | None:
        with self._lock:
            if self._stop.is_set():
                return None
            # Started from this thread, so PR_SET_PDEATHSIG fires when it ends: with `stop`.
            self._proc = start_worker_process(self.argv)
            return self._proc

    def _run(self) -> None:
        delay = self.backoff
        while True:
            started = time.monotonic()
            proc = self._spawn()
            if proc is None:
                return
            while proc.poll() is None:
                if self._stop.wait(0.5):
                    return
            if self._stop.is_set():
                return
            process_gone(proc.pid)
            if time.monotonic() - started >= self.steady_after:
                delay = self.backoff
            log.error(
                "the worker process (pid %d) exited%s; starting it again in %.0f s",
                proc.pid,
                f" with status {proc.returncode}" if proc.returncode else "",
                delay,
            )
            if self._stop.wait(delay):
                return
            self.restarts += 1
            delay = min(delay * 2, self.max_backoff)

    def stop(self, timeout: float = 20.0) -> None:
        if os.getpid() != self._owner:
            # A gunicorn web worker (a fork) leaving through `serve`'s frame: not its worker to
            # stop, and the lock may have been copied while held by the supervisor thread.
            return
        with self._lock:
            self._stop.set()
            proc = self._proc
        if proc is not None:
            stop_process(proc, timeout)
        self._thread.join(timeout=5)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
