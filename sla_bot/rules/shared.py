"""Rules state shared by the processes of one service instance (gunicorn workers + the worker).

Each process polls the rule files on its own. Without sharing, processes that saw different
sequences of edits would keep different "last good" rules once an edit is refused (and /readyz
would answer differently depending on the gunicorn worker), and a process started during a bad
edit would have no rules at all. So the instance directory holds the last good rule files,
written by whichever process loads them first, and one marker file per announcement, so that a
load or a refusal is logged and counted once per instance instead of once per process.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from sla_bot.rules.loader import Source

IN_FORCE = "rules-in-force.json"


class SharedRules:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def publish(self, version: str, sources: Sequence[Source]) -> None:
        """Record `version` as the instance's rules in force (atomic replace)."""
        current = self.in_force()
        if current is not None and current[0] == version:
            return
        data = {"version": version, "files": [[s.name, s.text] for s in sources]}
        try:
            fd, tmp = tempfile.mkstemp(prefix=".rules-", dir=self.directory)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out)
            os.replace(tmp, self.directory / IN_FORCE)
        except OSError:  # the directory is gone (the instance is stopping): nothing to share
            return

    def in_force(self) -> tuple[str, list[Source]] | None:
        """(version, files) another process of this instance put in force, if any."""
        try:
            data = json.loads((self.directory / IN_FORCE).read_text("utf-8"))
            return str(data["version"]), [Source(n, t) for n, t in data["files"]]
        except (OSError, ValueError, KeyError, TypeError):
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
