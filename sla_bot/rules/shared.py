"""Rules state shared by the processes of one service instance (gunicorn workers + the worker).

Each process polls the rule files on its own. Without sharing, processes that saw different
sequences of edits would keep different "last good" rules once an edit is refused (and /readyz
would answer differently depending on the gunicorn worker), and a process started during a bad
edit would have no rules at all. So the instance directory holds the last good rule files,
written by whichever process loads them first, and one marker file per announcement, so that a
load or a refusal is logged and counted once per instance instead of once per process.

Processes read the files at different moments, so a slow one can finish loading an older edit
after a faster one published a newer edit. Each publication carries the newest change time
(ctime) among the files it was read from and their directory, taken before reading them, and
never replaces a publication with the same or a newer one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from sla_bot.rules.loader import Source

IN_FORCE = "rules-in-force.json"


def _lock_within(fd: int, seconds: float) -> bool:
    """Take an exclusive file lock, polling, for at most `seconds`; never wait without end."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.001)


class SharedRules:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def publish(self, version: str, sources: Sequence[Source], stamp: int = 0) -> bool:
        """Record `version` as the instance's rules in force, unless what is in force was read
        from files as new or newer (`stamp`: their newest ctime, ns). True if it is in force."""
        data = {"version": version, "stamp": stamp, "files": [[s.name, s.text] for s in sources]}
        try:
            lock = os.open(self.directory / ".rules.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:  # the directory is gone (the instance is stopping): nothing to share
            return False
        try:
            if not _lock_within(lock, 2.0):  # compare and replace as one step
                return False  # best effort: the next reload publishes again
            current = self._read()
            if current is not None and current.get("version") == version:
                return True
            if current is not None and int(current.get("stamp", 0)) >= stamp:  # type: ignore[call-overload]
                return False  # another process already published this or a later edit
            fd, tmp = tempfile.mkstemp(prefix=".rules-", dir=self.directory)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out)
            os.replace(tmp, self.directory / IN_FORCE)
            return True
        except OSError:
            return False
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(lock, fcntl.LOCK_UN)  # explicit: a forked copy of the fd may live on
            os.close(lock)

    def _read(self) -> dict[str, object] | None:
        try:
            data = json.loads((self.directory / IN_FORCE).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def in_force(self) -> tuple[str, list[Source]] | None:
        """(version, files) another process of this instance put in force, if any."""
        data = self._read()
        try:
            return str(data["version"]), [Source(n, t) for n, t in data["files"]]  # type: ignore[index, union-attr]
        except (KeyError, TypeError, ValueError):
            return None

    def first(self, event: str) -> bool:
        """True for exactly one process of the instance per `event` (e.g. "loaded-<version>")."""
        name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in event)[:120]
        try:
            fd = os.open(self.directory / f"announced-{name}", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        except OSError:
            return True  # cannot tell: better said twice than never
        with contextlib.suppress(OSError):
            os.close(fd)
        return True
