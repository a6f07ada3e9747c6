"""Helpers for rules tests: write a rules directory, load it, build a lead's timeline."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from sla_bot.rules.errors import RuleError
from sla_bot.rules.loader import load_directory
from sla_bot.rules.ruleset import RuleSet

# The acceptance calendar: 08:00-18:00 Mon-Fri in New York with US public holidays.
BASE = """\
settings:
  default_calendar: ny
calendars:
  ny:
    timezone: America/New_York
    hours: {mon-fri: "08:00-18:00"}
    holidays: {country: US, subdivision: NY}
teams:
  sdr:
    channel: "#sales"
    managers: [{name: Mia Manager, email: mia@example.com, slack: U0MANAGER}]
    members:
      - {name: Alex, owner_id: "101", email: alex@example.com, slack: U0ALEX00}
      - {name: Blair, owner_id: "102", email: blair@example.com}
      - name: Casey
        owner_id: "103"
        email: casey@example.com
        out_of_office: [{from: 2027-01-01, to: 2027-01-31}]
"""

POLICY = """\
policies:
  demo:
    team: sdr
    first_touch: {within: 30 business minutes, warning: 80%}
    escalation:
      - {after: 0m, do: [notify_owner]}
      - {after: 15 business minutes, do: [notify_manager]}
      - {after: 30 business minutes, do: [reassign, notify_owner]}
      - {after: 1 business hour, do: [notify_channel], repeat: {every: 1 business hour, times: 2}}
routing:
  main:
    leads:
      - {name: demo, when: {lead_source: demo_request}, policy: demo}
    fallback: ignore
"""

# Friday 2027-01-15 17:55 in New York; Monday 2027-01-18 is Martin Luther King Jr. Day.
FRIDAY_1755 = "2027-01-15T22:55:00Z"
LEAD: dict[str, Any] = {
    "hs_object_id": "1",
    "createdate": FRIDAY_1755,
    "hubspot_owner_id": "101",
    "lead_source": "demo_request",
}


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return directory


def rules_from(tmp_path: Path, *texts: str) -> RuleSet:
    """A valid RuleSet from YAML snippets concatenated into one file (fails loudly if invalid)."""
    write(tmp_path, {"rules.yaml": "".join(textwrap.dedent(t) for t in texts)})
    result = load_directory(tmp_path)
    assert result.errors == [], "\n".join(map(str, result.errors))
    assert result.ruleset is not None
    return result.ruleset


def errors_of(tmp_path: Path, files: dict[str, str]) -> list[RuleError]:
    write(tmp_path, files)
    result = load_directory(tmp_path)
    assert result.ruleset is None
    return result.errors


def where(errors: list[RuleError]) -> list[tuple[str, int, int]]:
    return [(Path(e.file).name, e.line, e.col) for e in errors]
