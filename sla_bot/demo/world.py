"""The demo's fake world, derived from the rules: HubSpot owners, Slack people and channels, and
sample contacts whose properties route to a policy.

Whatever rules the demo plays (its own or the user's), every rep and manager they name gets a
HubSpot owner and a Slack account (found by e-mail, as in production), every channel they name
exists, and sample leads carry properties that one of their lead rules matches.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from integrations.hubspot.fake import FakeHubSpot
from integrations.slack.fake import FakeSlack
from sla_bot.rules import RuleSet
from sla_bot.rules.model import IGNORE
from sla_bot.rules.select import All, AnyOf, Cond, Node, Not

DEFAULT_PORTAL = 62515
SAMPLES = (
    ("Ada", "Lovelace", "Analytical Engines"),
    ("Grace", "Hopper", "Compilers Inc"),
    ("Pat", "O'Brien", "O'Brien & Sons <Ltd>"),  # CRM text is escaped everywhere it is shown
    ("Katherine", "Johnson", "Orbital Mechanics"),
    ("Alan", "Turing", "Bletchley Analytics"),
)


@dataclass
class DemoPerson:
    """A rep or manager of the rules, as the fake HubSpot and the fake Slack know them."""

    name: str
    email: str
    slack_id: str
    timezone: str
    role: str  # "rep" | "manager"
    team: str
    owner_id: str | None = None


@dataclass
class World:
    ruleset: RuleSet
    portal_id: int
    people: list[DemoPerson] = field(default_factory=list)
    channels: dict[str, str] = field(default_factory=dict)  # Slack id -> name
    routing_properties: dict[str, str] = field(default_factory=dict)
    policy: str | None = None  # the policy sample leads get; None if no rule could be matched
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _owners: Iterator[DemoPerson] | None = None

    def person(self, slack_id: str | None) -> DemoPerson | None:
        return next((p for p in self.people if p.slack_id == slack_id), None)

    def owner(self, owner_id: str | None) -> DemoPerson | None:
        return next((p for p in self.people if owner_id and p.owner_id == owner_id), None)

    def reps(self) -> list[DemoPerson]:
        """Reps who can own a sample lead: the sample policy's team first."""
        team = self.ruleset.policies[self.policy].team if self.policy else None
        reps = [p for p in self.people if p.owner_id and p.role == "rep"]
        return sorted(reps, key=lambda p: p.team != team)

    def next_owner(self) -> DemoPerson | None:
        team = self.ruleset.policies[self.policy].team if self.policy else None
        pool = [p for p in self.reps() if p.team == team] or self.reps()
        if not pool:
            return None
        if self._owners is None:
            self._owners = itertools.cycle(pool)
        return next(self._owners)

    def sample(self, now: datetime) -> dict[str, str]:
        """The next sample contact's properties, created now, owned round robin."""
        n = next(self._ids)
        first, last, company = SAMPLES[(n - 1) % len(SAMPLES)]
        owner = self.next_owner()
        slug = "".join(ch for ch in last.lower() if ch.isalpha())
        return contact_properties(
            first,
            last if n <= len(SAMPLES) else f"{last} {n}",
            company,
            f"{first.lower()}.{slug}{n}@example.com",
            owner.owner_id if owner else None,
            self.routing_properties,
            now,
        )


def contact_properties(
    first: str,
    last: str,
    company: str,
    email: str,
    owner_id: str | None,
    routing: dict[str, str],
    now: datetime,
) -> dict[str, str]:
    props = {
        **routing,
        "firstname": first,
        "lastname": last,
        "company": company,
        "email": email,
        "createdate": now.isoformat(),
        "hs_analytics_source": "DIRECT_TRAFFIC",
    }
    if owner_id:
        props["hubspot_owner_id"] = owner_id
        props["hubspot_owner_assigneddate"] = now.isoformat()
    return props


def build_world(ruleset: RuleSet, hubspot: FakeHubSpot, slack: FakeSlack, year: int) -> World:
    """Fill both fakes from the rules; returns who is who."""
    portal = _portal(ruleset)
    hubspot.portal_id = portal
    world = World(ruleset, portal)
    seen: dict[str, DemoPerson] = {}
    numbers = itertools.count(1)
    for team_name, team in ruleset.teams.items():
        zone = _zone(ruleset, team.calendar, year)
        people: list[tuple[str, Any]] = [("manager", m) for m in team.managers]
        people += [("rep", m) for m in team.members]
        for role, person in people:
            key = (person.email or person.slack or person.owner_id or "").lower()
            if key in seen:
                continue
            n = next(numbers)
            email = person.email or f"person{n}@example.com"
            tz = getattr(person, "timezone", None) or zone
            if getattr(person, "calendar", None):
                tz = _zone(ruleset, person.calendar, year)
            found = DemoPerson(
                name=person.label(),
                email=email,
                slack_id=person.slack or f"U0DEMO{n:04d}",
                timezone=tz,
                role=role,
                team=team_name,
                owner_id=getattr(person, "owner_id", None),
            )
            seen[key] = found
            world.people.append(found)
            slack.add_user(found.slack_id, email, name=found.name, tz=tz)
            if found.owner_id:
                first, _, last = found.name.partition(" ")
                hubspot.add_owner(found.owner_id, email, first, last or None)
    for n, channel in enumerate(sorted(channels_named(ruleset)), start=1):
        channel_id = channel if not channel.startswith("#") else f"C0DEMOCH{n:02d}"
        name = channel.lstrip("#") if channel.startswith("#") else _channel_name(channel, n)
        slack.add_channel(channel_id, name)
        world.channels[channel_id] = name
    world.policy, world.routing_properties = routing_example(ruleset, portal)
    return world


def _channel_name(channel_id: str, n: int) -> str:
    return "sales-escalations" if channel_id == "C0DEMOESC1" else f"channel-{n}"


def _portal(ruleset: RuleSet) -> int:
    """The default block's portal if there is one, else the first portal some block lists."""
    for block in ruleset.routing.values():
        if block.portals is None:
            return DEFAULT_PORTAL
    return next((b.portals[0] for b in ruleset.routing.values() if b.portals), DEFAULT_PORTAL)


def _zone(ruleset: RuleSet, calendar: str | None, year: int) -> str:
    name = calendar or ruleset.settings.default_calendar
    if not name or name not in ruleset.calendars:
        return "UTC"
    return str(ruleset.calendar(name, year=year).tz.key)


def channels_named(ruleset: RuleSet) -> set[str]:
    """Every Slack channel the rules post to: team channels and named notify_channel targets."""
    found: set[str] = set()

    def walk(value: Any, key: str | None = None) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif key in ("channel", "notify_channel") and isinstance(value, str):
            found.add(value)

    for team in ruleset.teams.values():
        walk(team.model_dump(), None)
    for policy in ruleset.policies.values():
        walk(policy.model_dump(mode="json"), None)
    return found


def routing_example(ruleset: RuleSet, portal: int) -> tuple[str | None, dict[str, str]]:
    """Properties that route a lead to a policy, from the first lead rule that yields some."""
    found = ruleset.routing_block(portal)
    if found is None:
        return None, {}
    _, block = found
    for rule in block.leads:
        if rule.policy == IGNORE:
            continue
        props = _example(rule.when.root) or {}
        route = ruleset.route(portal, props)
        if route.policy is not None:
            return route.policy, props
    if block.fallback != IGNORE:
        return block.fallback, {}
    return None, {}


def _example(node: Node) -> dict[str, str] | None:
    """Some property values that satisfy `node`, or None if none is easy to find."""
    if isinstance(node, Cond):
        return _cond_example(node)
    if isinstance(node, All):
        merged: dict[str, str] = {}
        for part in node.parts:
            got = _example(part)
            if got is None:
                return None
            merged.update(got)
        return merged
    if isinstance(node, AnyOf):
        return next((got for p in node.parts if (got := _example(p)) is not None), None)
    if isinstance(node, Not):
        return {}  # unset properties satisfy most negations; the caller checks the route
    return None


def _cond_example(c: Cond) -> dict[str, str] | None:
    value: Any = c.value
    if c.op in ("not_equals", "not_in", "not_contains", "missing"):
        return {}
    if c.op == "exists":
        return {c.prop: "yes"}
    if c.op == "equals":
        return {c.prop: str(value)}
    if c.op == "contains":
        return {c.prop: f"{value} request"}
    if c.op == "in":
        return {c.prop: str(value[0])}
    if c.op in ("gt", "gte", "lt", "lte"):
        step = {"gt": 1, "gte": 0, "lt": -1, "lte": 0}[c.op]
        return {c.prop: f"{value + step:g}"}
    if c.op in ("before", "after"):
        days = timedelta(days=-1 if c.op == "before" else 1)
        return {c.prop: (value + days).isoformat()}
    return None  # a regex: too open-ended to guess
