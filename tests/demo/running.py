"""`sla-bot demo` as a user runs it: a real process whose output is read as it comes."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class DemoProcess:
    """`python -m sla_bot demo ARGS` with TMPDIR in `tmp`, so leftovers are easy to see."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.tmp = tmp / "tmpdir"
        self.tmp.mkdir()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SLA_BOT_", "HUBSPOT_", "SLACK_", "DATABASE_", "PROMETHEUS_"))
        }
        env.update(TMPDIR=str(self.tmp), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sla_bot", "demo", "--port", "0", *args],
            cwd=tmp,  # not the repository: the demo finds its rules by itself
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first output line matching `pattern` (fails with the output so far)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := re.search(pattern, line):
                    return found
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r} in:\n{self.output}")

    def url(self, what: str) -> str:
        return self.wait_for(rf"^\s+{what}\s+(http://127\.0\.0\.1:\d+/?)", 90).group(1)

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.wait()

    def wait(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.interrupt()

    def leftovers(self) -> list[str]:
        return sorted(str(p.relative_to(self.tmp)) for p in self.tmp.iterdir())


def port_open(url: str) -> bool:
    host, port = url.split("//")[1].rstrip("/").split(":")
    with socket.socket() as s:
        return s.connect_ex((host, int(port))) == 0


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text` (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found
