"""RulesHolder: the rules in force, hot-reloaded when the files change, never replaced by bad ones.

`reload_if_changed` is meant to be called every couple of seconds. Its common path is a stat()
of each rule file; only when names, sizes or mtimes change are the files read and hashed, and only
when the content hash changes are they parsed and validated. An invalid edit keeps the last good
rules in force and records the errors for /readyz and the metrics.

With `shared` (the processes of one `serve` or `web`), the last good rules are the instance's,
not the process's: a process that meets a refused edit takes the rules its siblings put in force,
and each load or refusal is announced (logged, `on_error`) by one process only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sla_bot.clock import Clock, SystemClock
from sla_bot.rules.errors import RuleError
from sla_bot.rules.loader import Source, content_version, load_sources, rule_files
from sla_bot.rules.ruleset import RuleSet, snapshot_hash
from sla_bot.rules.shared import SharedRules

log = logging.getLogger(__name__)

Signature = tuple[tuple[str, int, int], ...]


class NoRulesLoaded(RuntimeError):
    """No valid rules have been loaded yet; `errors` says why."""


@dataclass(frozen=True)
class LoadedRules:
    """One good load: the rules, their content hash and when they were loaded."""

    ruleset: RuleSet
    version: str
    loaded_at: datetime

    def policy_snapshot(self, name: str) -> dict[str, Any]:
        """The JSON-able snapshot a lead stores when it starts under policy `name`."""
        return self.ruleset.policy_snapshot(name)

    def policy_hash(self, name: str) -> str:
        return snapshot_hash(self.policy_snapshot(name))


class RulesHolder:
    def __init__(
        self,
        directory: Path,
        *,
        on_error: Callable[[list[RuleError]], None] | None = None,
        clock: Clock | None = None,
        shared: SharedRules | None = None,
    ) -> None:
        self.directory = Path(directory)
        self._on_error = on_error
        self._shared = shared
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._current: LoadedRules | None = None
        self._errors: list[RuleError] = []
        self._signature: Signature | None = None
        self._attempted: str | None = None  # content hash of the latest attempt, good or bad

    def current(self) -> LoadedRules:
        """The last good rules; raises NoRulesLoaded if there never were any."""
        current = self._current
        if current is None:
            detail = "; ".join(str(e) for e in self._errors) or "reload_if_changed() not called"
            raise NoRulesLoaded(f"no valid rules loaded from {self.directory}: {detail}")
        return current

    @property
    def loaded(self) -> bool:
        return self._current is not None

    @property
    def errors(self) -> list[RuleError]:
        """Errors of the latest attempt; [] when it was good."""
        return list(self._errors)

    def reload_if_changed(self) -> bool:
        """Load new rules if the files changed; True only when new rules were put in force."""
        with self._lock:
            try:
                signature = self._scan()
            except OSError as exc:
                problem = f"cannot read: {exc}"
                if self._attempted == problem:
                    return False  # same failure as last time: already reported
                self._signature, self._attempted = None, problem
                return self._failed([RuleError(str(self.directory), 0, 0, problem)])
            if signature == self._signature:
                return False
            try:
                sources = [
                    Source(str(self.directory / name), (self.directory / name).read_text("utf-8"))
                    for name, _, _ in signature
                    if name
                ]
            except (OSError, UnicodeDecodeError) as exc:
                return self._failed([RuleError(str(self.directory), 0, 0, f"cannot read: {exc}")])
            self._signature = signature
            version = content_version(sources)
            if version == self._attempted:
                return False  # touched but not changed
            self._attempted = version
            if not sources:
                return self._failed([RuleError(str(self.directory), 0, 0, "no *.yaml rule files")])
            result = load_sources(sources, year=self._clock.now().year)
            if result.ruleset is None:
                return self._failed(result.errors)
            self._current = LoadedRules(result.ruleset, version, self._clock.now())
            self._errors = []
            if self._shared is not None:
                self._shared.publish(version, sources, self._stamp(signature))
            level = logging.INFO if self._first(f"loaded-{version}") else logging.DEBUG
            log.log(level, "rules %s loaded from %d file(s)", version, len(sources))
            return True

    def _scan(self) -> Signature:
        """(name, ctime, size) of each rule file, then the directory's own entry.

        ctime, not mtime: it moves on every change to a file, even one copied in place with
        its old mtime kept (`cp -p`, `rsync -t`), and nobody can set it back. The directory's
        ctime moves when a file is added, removed or renamed into place. Taken before the files
        are read, so a publication's stamp is never newer than what was read.
        """
        if not self.directory.is_dir():
            raise NotADirectoryError(f"{self.directory} is not a directory")
        out = []
        for path in rule_files(self.directory):
            st = path.stat()
            out.append((path.name, st.st_ctime_ns, st.st_size))
        out.append(("", self.directory.stat().st_ctime_ns, 0))
        return tuple(out)

    @staticmethod
    def _stamp(signature: Signature) -> int:
        """When the files read last changed: the newest ctime in their signature."""
        return max(changed for _, changed, _ in signature)

    def _first(self, event: str) -> bool:
        return self._shared is None or self._shared.first(event)

    def _failed(self, errors: list[RuleError]) -> bool:
        self._errors = errors
        changed = self._adopt_shared()
        announce = self._first(f"refused-{self._attempted}")
        log.log(
            logging.WARNING if announce else logging.DEBUG,
            "rules not reloaded: %d error(s); %s",
            len(errors),
            "previous rules stay in force" if self._current else "no rules in force",
        )
        if announce and self._on_error is not None:
            self._on_error(errors)
        return changed

    def _adopt_shared(self) -> bool:
        """Take the instance's rules in force, if another process put newer ones in force."""
        found = self._shared.in_force() if self._shared is not None else None
        if found is None or (self._current is not None and self._current.version == found[0]):
            return False
        version, sources = found
        result = load_sources(sources, year=self._clock.now().year)
        if result.ruleset is None:
            return False
        self._current = LoadedRules(result.ruleset, version, self._clock.now())
        log.debug("rules %s taken from the instance's rules in force", version)
        return True
