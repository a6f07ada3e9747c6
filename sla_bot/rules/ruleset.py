"""RuleSet: the merged, validated rules of one directory, and the questions asked of them.

Everything here is read-only after loading; the only state is a cache of built calendars (holiday
expansion costs a millisecond or two per calendar and year).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sla_bot.businesstime import BusinessCalendar
from sla_bot.rules.calendars import build_calendar
from sla_bot.rules.model import IGNORE, Calendar, Digest, Member, Policy, Routing, Settings, Team
from sla_bot.rules.select import Props

SNAPSHOT_FORMAT = 1


@dataclass(frozen=True)
class Route:
    """Which policy a lead got, and why: the routing block, the rule, the conditions that held."""

    policy: str | None  # None: ignored (or no routing block for the portal)
    block: str | None
    rule: str | None  # None: the fallback
    reasons: tuple[str, ...]

    def explain(self) -> str:
        if self.block is None:
            return "no routing block serves this portal; the lead is ignored"
        target = f"policy '{self.policy}'" if self.policy else "ignore"
        if self.rule is None:
            return f"routing '{self.block}': no rule matched, fallback -> {target}"
        why = "; ".join(self.reasons)
        return f"routing '{self.block}': rule '{self.rule}' matched ({why}) -> {target}"


class RuleSet:
    """Calendars, teams, policies and routing blocks by name, merged from all files."""

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        calendars: Mapping[str, Calendar],
        teams: Mapping[str, Team],
        policies: Mapping[str, Policy],
        routing: Mapping[str, Routing],
        digests: Mapping[str, Digest] | None = None,
        files: tuple[str, ...] = (),
    ) -> None:
        self.settings = settings or Settings()
        self.calendars = dict(calendars)
        self.teams = dict(teams)
        self.policies = dict(policies)
        self.routing = dict(routing)
        self.digests = dict(digests or {})
        self.files = files
        self._built: dict[tuple[str, str | None, int, int], BusinessCalendar] = {}
        self._lock = threading.Lock()

    # --- calendars -----------------------------------------------------------------------------

    def calendar(
        self, name: str, *, year: int, tz: str | None = None, last_year: int | None = None
    ) -> BusinessCalendar:
        """The named calendar with holidays from around `year` to around `last_year`,
        optionally moved to another zone."""
        key = (name, tz, year, last_year or year)
        with self._lock:
            cal = self._built.get(key)
        if cal is None:
            cal = build_calendar(name, self.calendars[name], year, tz, last_year)
            with self._lock:
                self._built[key] = cal
        return cal

    def calendar_name(
        self, policy: Policy | None, team: Team | None, member: Member | None
    ) -> str | None:
        """Policy override > the rep's own > the team's > settings.default_calendar."""
        for name in (
            policy.calendar if policy else None,
            member.calendar if member else None,
            team.calendar if team else None,
            self.settings.default_calendar,
        ):
            if name and name in self.calendars:
                return name
        return None

    # --- routing and people --------------------------------------------------------------------

    def routing_block(self, portal_id: int | None) -> tuple[str, Routing] | None:
        """The block listing this portal, else the block without `portals`, else None."""
        fallback = None
        for name, block in self.routing.items():
            if block.portals is None:
                fallback = (name, block)
            elif portal_id is not None and portal_id in block.portals:
                return name, block
        return fallback

    def route(self, portal_id: int | None, props: Props) -> Route:
        """First matching lead rule of the portal's block, else its fallback."""
        found = self.routing_block(portal_id)
        if found is None:
            return Route(None, None, None, ())
        name, block = found
        for rule in block.leads:
            reasons = rule.when.explain(props)
            if reasons is not None:
                policy = None if rule.policy == IGNORE else rule.policy
                return Route(policy, name, rule.name, tuple(reasons))
        policy = None if block.fallback == IGNORE else block.fallback
        return Route(policy, name, None, ())

    def find_member(
        self, *, owner_id: str | None, email: str | None = None, prefer_team: str | None = None
    ) -> tuple[str, Member] | None:
        """The team member for a HubSpot owner; the policy's team wins if the rep is in several."""
        order = sorted(self.teams.items(), key=lambda item: item[0] != prefer_team)
        for team_name, team in order:
            for member in team.members:
                if (owner_id and member.owner_id == owner_id) or (
                    email and member.email and member.email.lower() == email.lower()
                ):
                    return team_name, member
        return None

    # --- snapshots -----------------------------------------------------------------------------

    def policy_snapshot(self, name: str) -> dict[str, Any]:
        """JSON-able copy of a policy and the calendars its deadlines are computed with.

        A lead stores this (and `snapshot_hash`) when it starts, and `pin` puts it back, so editing
        a policy or calendar does not move the deadlines of leads already running.
        """
        policy = self.policies[name]
        team = self.teams.get(policy.team or "")
        names = {policy.calendar, self.settings.default_calendar}
        if team is not None:
            names |= {team.calendar, *(m.calendar for m in team.members)}
        calendars = {
            n: self.calendars[n].model_dump(mode="json", exclude_none=True)
            for n in sorted(filter(None, names))
            if n in self.calendars
        }
        return {
            "format": SNAPSHOT_FORMAT,
            "policy": name,
            "definition": policy.model_dump(mode="json", exclude_none=True),
            "calendars": calendars,
        }

    def pin(self, snapshot: Mapping[str, Any]) -> RuleSet:
        """A copy of these rules with a snapshot's policy and calendars put back in force."""
        if snapshot.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"unknown policy snapshot format {snapshot.get('format')!r}")
        calendars = self.calendars | {
            n: Calendar.model_validate(c) for n, c in snapshot["calendars"].items()
        }
        policies = self.policies | {
            snapshot["policy"]: Policy.model_validate(snapshot["definition"])
        }
        return RuleSet(
            settings=self.settings,
            calendars=calendars,
            teams=self.teams,
            policies=policies,
            routing=self.routing,
            digests=self.digests,
            files=self.files,
        )

    def summary(self) -> str:
        members = sum(len(t.members) for t in self.teams.values())
        parts = [
            f"{len(self.files)} file{'s' * (len(self.files) != 1)}",
            f"{len(self.calendars)} calendars",
            f"{len(self.teams)} teams ({members} members)",
            f"{len(self.policies)} policies",
            f"{len(self.routing)} routing blocks",
            *([f"{len(self.digests)} digests"] if self.digests else []),
        ]
        return ", ".join(parts)


def snapshot_hash(snapshot: Mapping[str, Any]) -> str:
    """Short stable hash of a snapshot (canonical JSON), stored next to it on the lead."""
    canonical = json.dumps(snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
