"""Checks that need more than one field: references between definitions, ordering, shadowing.

Runs over every definition that validated on its own, reporting at the YAML node at fault.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from sla_bot.businesstime import CalendarError
from sla_bot.rules import digests
from sla_bot.rules import model as m
from sla_bot.rules.calendars import build_calendar, check_holiday_source
from sla_bot.rules.report import Origin, Report
from sla_bot.rules.select_implies import selector_implies
from sla_bot.rules.yamlpos import Path

KINDS = {
    "calendars": "calendar",
    "teams": "team",
    "policies": "policy",
    "routing": "routing",
    "digests": "digest",
}
# References a definition makes by name: (key, section it names). Checked from the raw YAML for
# definitions that failed validation, so "every error" includes a bad name next to a bad value.
RAW_REFERENCES = {
    "policies": (("team", "teams"), ("calendar", "calendars")),
    "teams": (("calendar", "calendars"),),
    "digests": (("calendar", "calendars"),),
}


@dataclass
class Definitions:
    """What the files defined, where, and which names exist but failed validation."""

    items: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {section: {} for section in KINDS}
    )
    origins: dict[tuple[str, str], Origin] = field(default_factory=dict)
    raw: dict[tuple[str, str], Any] = field(default_factory=dict)
    broken: set[tuple[str, str]] = field(default_factory=set)
    settings: dict[str, Any] = field(default_factory=dict)
    settings_origin: dict[str, str] = field(default_factory=dict)


class _Checker:
    def __init__(self, defs: Definitions, report: Report, year: int) -> None:
        self.defs, self.report, self.year = defs, report, year

    def at(self, section: str, name: str, sub: Path, message: str, *, key: bool = False) -> None:
        self.report.at(self.defs.origins[(section, name)], (section, name, *sub), message, key=key)

    def ref(self, section: str, target: str | None, where: tuple[str, str], sub: Path) -> bool:
        """Report a reference to an unknown definition; True if target is usable."""
        if target is None:
            return False
        if target in self.defs.items[section]:
            return True
        if (section, target) not in self.defs.broken:
            known = sorted(self.defs.items[section])
            near = difflib.get_close_matches(target, known, n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else f" (known: {', '.join(known)})"
            self.at(*where, sub, f"unknown {KINDS[section]} '{target}'{hint if known else ''}")
        return False

    # --- calendars and teams -------------------------------------------------------------------

    def calendars(self) -> None:
        default = self.defs.settings.get("default_calendar")
        if default and default not in self.defs.items["calendars"]:
            origin = self.defs.origins[("settings", "default_calendar")]
            if ("calendars", default) not in self.defs.broken:
                self.report.at(
                    origin, ("settings", "default_calendar"), f"unknown calendar '{default}'"
                )
        for name, cal in self.defs.items["calendars"].items():
            raw = self.defs.raw[("calendars", name)]
            listed = isinstance(raw.get("holidays"), list)
            problems = [
                ((("holidays", i) if listed else ("holidays",)) + sub, msg)
                for i, src in enumerate(cal.holidays)
                for sub, msg in check_holiday_source(src, self.year)
            ]
            for sub, msg in problems:
                self.at("calendars", name, sub, msg)
            if not problems:
                try:
                    build_calendar(name, cal, self.year)
                except CalendarError as exc:
                    self.at("calendars", name, (), str(exc), key=True)

    def teams(self) -> None:
        has_default = bool(self.defs.settings.get("default_calendar"))
        for name, team in self.defs.items["teams"].items():
            where = ("teams", name)
            self.ref("calendars", team.calendar, where, ("calendar",))
            for i, member in enumerate(team.members):
                self.ref("calendars", member.calendar, where, ("members", i, "calendar"))
            if team.noise is not None and not (team.managers or team.channel):
                self.at(
                    *where,
                    ("noise",),
                    f"noise: team '{name}' has no managers and no channel to batch messages for",
                )
            if not (team.calendar or has_default or all(x.calendar for x in team.members)):
                self.at(
                    *where,
                    (),
                    f"team '{name}' has no calendar: set `calendar:` or settings.default_calendar",
                    key=True,
                )

    # --- policies ------------------------------------------------------------------------------

    def policies(self) -> None:
        for name, policy in self.defs.items["policies"].items():
            self.policy(name, policy)

    def policy(self, name: str, p: m.Policy) -> None:
        where = ("policies", name)
        team_ok = self.ref("teams", p.team, where, ("team",))
        self.ref("calendars", p.calendar, where, ("calendar",))
        if not (p.calendar or p.team or self.defs.settings.get("default_calendar")):
            self.at(
                *where,
                (),
                f"policy '{name}' has no calendar: set `team:`, `calendar:` or "
                f"settings.default_calendar",
                key=True,
            )
        team = self.defs.items["teams"].get(p.team) if team_ok else None
        if team is not None:
            self.actions(name, p, team)
        if (
            p.quiet_hours.out_of_office == "escalate"
            and team is not None
            and not (team.managers or team.channel)
        ):
            self.at(
                *where,
                ("quiet_hours", "out_of_office"),
                f"out_of_office: escalate: team '{p.team}' has no managers or channel to tell",
            )

    def actions(self, name: str, p: m.Policy, team: m.Team) -> None:
        """Actions that need something from the policy's team: managers, a channel, people."""
        lists: list[tuple[Path, list[m.Action]]] = [
            (("escalation", i, "do"), step.do) for i, step in enumerate(p.escalation)
        ]
        lists.append((("first_touch", "on_assignment"), p.first_touch.on_assignment))
        if p.first_touch.warning:
            lists.append((("first_touch", "warning", "do"), p.first_touch.warning.do))
        if p.cadence:
            lists.append((("cadence", "on_missed_gap"), p.cadence.on_missed_gap))
        if p.premature_disqualification:
            lists.append((("premature_disqualification", "do"), p.premature_disqualification.do))
        for sub, actions in lists:
            for j, action in enumerate(actions):
                problem = _team_lacks(action.kind, action.notify_channel is True, team)
                if problem:
                    self.at(
                        "policies", name, (*sub, j), f"{action.kind}: team '{p.team}' {problem}"
                    )
        if p.recycle and p.recycle.notify_channel is True and not team.channel:
            self.at(
                "policies",
                name,
                ("recycle", "notify_channel"),
                f"notify_channel: team '{p.team}' has no channel",
            )

    def broken_references(self) -> None:
        """Names used by definitions that failed validation on their own (e.g. a policy with a
        bad duration and an unknown team: both are errors, both are reported)."""
        for section, name in sorted(self.defs.broken):
            raw = self.defs.raw.get((section, name))
            if not isinstance(raw, dict):
                continue
            for key, target in RAW_REFERENCES.get(section, ()):
                value = raw.get(key)
                if isinstance(value, str):
                    self.ref(target, value, (section, name), (key,))

    # --- routing -------------------------------------------------------------------------------

    def routing(self) -> None:
        blocks = self.defs.items["routing"]
        if not blocks and not any(s == "routing" for s, _ in self.defs.broken):
            first = next(iter(self.defs.origins.values()), None)
            if first is not None:
                self.report.at(first, (), "no routing block: without one every lead is ignored")
        portal_owner: dict[int, str] = {}
        unscoped: str | None = None
        for name, block in blocks.items():
            where = ("routing", name)
            if block.portals is None:
                if unscoped is not None:
                    self.at(
                        *where,
                        (),
                        f"routing '{name}' has no `portals`, like '{unscoped}': "
                        "only one block may serve all other portals",
                        key=True,
                    )
                unscoped = unscoped or name
            for i, portal in enumerate(block.portals or []):
                owner = portal_owner.get(portal)
                if owner is not None:
                    why = "is listed twice" if owner == name else f"is already served by '{owner}'"
                    self.at(*where, ("portals", i), f"portal {portal} {why}")
                portal_owner.setdefault(portal, name)
            self.block(name, block)

    def block(self, name: str, block: m.Routing) -> None:
        where = ("routing", name)
        names: set[str] = set()
        for i, rule in enumerate(block.leads):
            if rule.name in names:
                self.at(*where, ("leads", i, "name"), f"lead rule name '{rule.name}' is used twice")
            names.add(rule.name)
            if rule.policy != m.IGNORE:
                self.ref("policies", rule.policy, where, ("leads", i, "policy"))
            for j, earlier in enumerate(block.leads[:i]):
                line = self.defs.origins[where].positions.of_value((*where, "leads", j))[0]
                if earlier.when.is_catch_all:
                    why = f"rule '{earlier.name}' (line {line}) before it matches every lead"
                elif selector_implies(rule.when, earlier.when):
                    why = f"rule '{earlier.name}' (line {line}) takes every lead it matches"
                else:
                    continue
                self.at(*where, ("leads", i, "when"), f"rule '{rule.name}' can never match: {why}")
                break
        if block.fallback != m.IGNORE:
            self.ref("policies", block.fallback, where, ("fallback",))
        if block.leads and block.leads[-1].when.is_catch_all:
            self.at(
                *where,
                ("fallback",),
                f"the fallback is never used: rule "
                f"'{block.leads[-1].name}' matches every lead; make its "
                "policy the fallback instead",
            )


def _team_lacks(kind: str, team_channel: bool, team: m.Team) -> str | None:
    if kind == "notify_manager" and not team.managers:
        return "has no managers"
    if kind == "notify_channel" and team_channel and not team.channel:
        return "has no channel"
    if kind == "reassign" and len(team.members) < 2:
        return "needs at least two members to reassign"
    return None


def validate(defs: Definitions, report: Report, year: int) -> None:
    checker = _Checker(defs, report, year)
    checker.calendars()
    checker.teams()
    checker.policies()
    checker.broken_references()
    checker.routing()
    digests.check(checker)
