"""Load a rules directory into a RuleSet, or into every error found, each at file:line:col.

Each definition (one calendar, team, policy or routing block) is validated on its own, so one
broken policy does not hide the mistakes in the next one, and cross-reference checks still run
over everything that did validate. A reference to a definition that exists but is itself broken
is not reported again as "unknown".

Only the top level of the directory is read (`*.yaml` and `*.yml`, sorted by name); sub-directories
such as rules/examples/ are not loaded.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, ValidationError

from sla_bot.rules import model as m
from sla_bot.rules.errors import RuleError, RulesInvalid
from sla_bot.rules.fields import NAME_PATTERN
from sla_bot.rules.report import Origin, Report, field_names
from sla_bot.rules.ruleset import RuleSet
from sla_bot.rules.validate import KINDS, Definitions, validate
from sla_bot.rules.yamlpos import load_yaml

SECTIONS: dict[str, type[BaseModel]] = {
    "calendars": m.Calendar,
    "teams": m.Team,
    "policies": m.Policy,
    "routing": m.Routing,
    "digests": m.Digest,
}
TOP_KEYS = ("settings", *SECTIONS)
PATTERNS = ("*.yaml", "*.yml")
_VOCABULARY = field_names(
    obj for obj in (getattr(m, n) for n in m.__all__) if isinstance(obj, type)
)


@dataclass(frozen=True)
class Source:
    """One rule file: the name errors show (e.g. rules/default.yaml) and its text."""

    name: str
    text: str


@dataclass
class LoadResult:
    ruleset: RuleSet | None
    errors: list[RuleError]
    version: str
    files: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.ruleset is not None and not self.errors


def rule_files(directory: FsPath) -> list[FsPath]:
    """The files that make up a rule set: top-level *.yaml / *.yml, sorted by name."""
    found = {p for pattern in PATTERNS for p in directory.glob(pattern) if p.is_file()}
    return sorted(found, key=lambda p: p.name)


def read_sources(directory: FsPath) -> list[Source]:
    return [Source(str(p), p.read_text(encoding="utf-8")) for p in rule_files(directory)]


def content_version(sources: Sequence[Source]) -> str:
    """sha256 over sorted base file names and contents, shortened: the rules' version id."""
    h = hashlib.sha256()
    for src in sorted(sources, key=lambda s: FsPath(s.name).name):
        h.update(FsPath(src.name).name.encode() + b"\0" + src.text.encode() + b"\0")
    return h.hexdigest()[:12]


def load_directory(directory: FsPath, *, year: int | None = None) -> LoadResult:
    """Load and validate a directory; never raises for bad content."""
    if not directory.is_dir():
        return LoadResult(None, [RuleError(str(directory), 0, 0, "not a directory")], "")
    try:
        sources = read_sources(directory)
    except (OSError, UnicodeDecodeError) as exc:
        return LoadResult(None, [RuleError(str(directory), 0, 0, f"cannot read: {exc}")], "")
    if not sources:
        return LoadResult(None, [RuleError(str(directory), 0, 0, "no *.yaml rule files")], "")
    return load_sources(sources, year=year)


def load_rules(directory: FsPath) -> RuleSet:
    """Load a directory or raise RulesInvalid with every error."""
    result = load_directory(directory)
    if result.ruleset is None:
        raise RulesInvalid(result.errors)
    return result.ruleset


def load_sources(sources: Sequence[Source], *, year: int | None = None) -> LoadResult:
    """Validate already-read files (the holder reads them once to hash and load)."""
    year = year or datetime.now(UTC).year
    report = Report()
    defs = Definitions()
    for src in sources:
        _load_file(src, defs, report)
    validate(defs, report, year)
    files = tuple(s.name for s in sources)
    version = content_version(sources)
    if report.errors:
        return LoadResult(None, sorted(report.errors), version, files)
    ruleset = RuleSet(
        settings=m.Settings(**defs.settings),
        calendars=defs.items["calendars"],
        teams=defs.items["teams"],
        policies=defs.items["policies"],
        routing=defs.items["routing"],
        digests=defs.items["digests"],
        files=files,
    )
    return LoadResult(ruleset, [], version, files)


def _load_file(src: Source, defs: Definitions, report: Report) -> None:
    loaded = load_yaml(src.text, src.name)
    report.extend(loaded.errors)
    if loaded.data is None:
        return
    origin = Origin(src.name, loaded.positions)
    data = loaded.data
    if not isinstance(data, dict):
        report.at(origin, (), "a rules file is a mapping with keys " + ", ".join(TOP_KEYS))
        return
    for key, value in data.items():
        if key.startswith("x-"):
            continue  # a place for YAML anchors, e.g. x-hours: &office "08:00-18:00"
        if key not in TOP_KEYS:
            near = difflib.get_close_matches(key, TOP_KEYS, n=1, cutoff=0.6)
            hint = f" (did you mean '{near[0]}'?)" if near else f"; expected {', '.join(TOP_KEYS)}"
            report.at(origin, (key,), f"unknown top-level key '{key}'{hint}", key=True)
        elif value is None:
            continue  # a section whose entries are all commented out
        elif not isinstance(value, dict):
            report.at(origin, (key,), f"'{key}' must be a mapping of name -> definition")
        elif key == "settings":
            _settings(origin, value, defs, report)
        else:
            for name, raw in value.items():
                _definition(origin, key, name, raw, defs, report)


def _settings(origin: Origin, raw: dict[str, Any], defs: Definitions, report: Report) -> None:
    try:
        parsed = m.Settings.model_validate(raw)
    except ValidationError as exc:
        report.validation_error(origin, ("settings",), raw, exc, _VOCABULARY)
        return
    for key in parsed.model_fields_set:
        if key in defs.settings_origin:
            first = defs.settings_origin[key]
            report.at(
                origin, ("settings", key), f"setting '{key}' is already set in {first}", key=True
            )
            continue
        defs.settings[key] = getattr(parsed, key)
        defs.settings_origin[key] = origin.file
        defs.origins[("settings", key)] = origin


def _definition(
    origin: Origin, section: str, name: str, raw: Any, defs: Definitions, report: Report
) -> None:
    path = (section, name)
    if path in defs.origins:
        first = defs.origins[path]
        line = first.positions.of_key(path)[0]
        kind = KINDS[section]
        report.at(
            origin,
            path,
            f"duplicate {kind} name '{name}' (first defined at {first.file}:{line})",
            key=True,
        )
        return
    defs.origins[path] = origin
    if not re.fullmatch(NAME_PATTERN, name) or name == m.IGNORE:
        why = "is reserved" if name == m.IGNORE else "may use only letters, digits, _ . and -"
        report.at(origin, path, f"name '{name}' {why}", key=True)
        defs.broken.add(path)
        return
    if raw is None:
        report.at(origin, path, f"'{name}' is empty", key=True)
        defs.broken.add(path)
        return
    defs.raw[path] = raw  # broken ones too: their references are still checked
    try:
        defs.items[section][name] = SECTIONS[section].model_validate(raw)
    except ValidationError as exc:
        report.validation_error(origin, path, raw, exc, _VOCABULARY)
        defs.broken.add(path)
