"""Run `sla-bot serve` (or web/worker) as a real process for end-to-end tests and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests


def wait_for(check: Any, timeout: float = 10.0) -> Any:
    """Poll `check` until it returns something truthy (or `timeout` passes): for processes to
    get somewhere, never for an SLA to run out."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServiceProcess:
    """A `sla-bot` command in its own process; `kill()` is SIGKILL of that process only."""

    def __init__(self, command: str, env: dict[str, str], cwd: Path, port: int) -> None:
        self.command, self.cwd, self.port = command, cwd, port
        self.env = {**os.environ, **env, "SLA_BOT_PORT": str(port)}
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = cwd / f"{command}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServiceProcess:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sla_bot", self.command],
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> ServiceProcess:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.command} exited: {self.log.read_text()[-2000:]}")
            try:
                if requests.get(self.url + "/readyz", timeout=5).status_code == 200:
                    return self
            except requests.RequestException:  # not listening yet, or busy booting
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.command} not ready: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self._wait_port_free()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                # Longer than serve's own grace for its web workers and its worker (20 s
                # each): killing serve first would leave its worker behind as an orphan.
                self.proc.wait(45)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._wait_port_free()

    def _wait_port_free(self, timeout: float = 15.0) -> None:
        """Children die with their parent (PDEATHSIG); wait until none holds the port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"port {self.port} still in use after {self.command} stopped")
