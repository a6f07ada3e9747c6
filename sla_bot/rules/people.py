"""Who hears about a step, and when: owner, managers, channels, quiet hours, reassignment.

Kept apart from the deadline arithmetic because it answers a different question: a deadline is
when the lead is late; delivery is when a person may be disturbed about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sla_bot.businesstime import BusinessCalendar, CalendarError
from sla_bot.rules.model import Action, DateRange, Member, Noise, Person, Policy, Team
from sla_bot.rules.ruleset import RuleSet

NEW_OWNER = "(new owner after reassignment)"


@dataclass(frozen=True)
class Recipient:
    """One person or channel to tell; deliver_at is None when the message is skipped."""

    role: str  # owner | manager | channel
    name: str
    slack: str | None = None
    email: str | None = None
    owner_id: str | None = None
    deliver_at: datetime | None = None
    note: str | None = None  # why delivery is held or skipped

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if v is not None}
        if self.deliver_at is not None:
            out["deliver_at"] = self.deliver_at.isoformat()
        return out


def noise_for(rules: RuleSet | None, policy: str | None, team: str | None) -> Noise | None:
    """The noise settings (batching, hourly cap) a lead's messages follow: its team's, else
    its policy's."""
    if rules is None:
        return None
    found = rules.teams.get(team or "")
    if found is not None and found.noise is not None:
        return found.noise
    p = rules.policies.get(policy or "")
    return p.noise if p is not None else None


def out_of_office(ranges: list[DateRange], day: date) -> DateRange | None:
    return next((r for r in ranges if r.from_ <= day <= r.to), None)


class People:
    """The people around one lead, resolved once per timeline."""

    def __init__(
        self,
        rules: RuleSet,
        policy: Policy,
        team_name: str | None,
        owner: Member | None,
        years: int | tuple[int, int],
    ) -> None:
        """`years`: the years the lead lives in (holidays are loaded around them)."""
        self.rules, self.policy = rules, policy
        self.years = (years, years) if isinstance(years, int) else years
        self.team_name = team_name
        self.team: Team | None = rules.teams.get(team_name or "")
        self.owner = owner

    def calendar_of(self, member: Member | None) -> BusinessCalendar | None:
        """A person's own calendar (rep's own, else the team's, else the default)."""
        name = self.rules.calendar_name(None, self.team, member)
        if name is None:
            return None
        first, last = self.years
        tz = member.timezone if member else None
        return self.rules.calendar(name, year=first, last_year=last, tz=tz)

    def recipients(
        self, action: Action, due: datetime, *, reassigned: bool
    ) -> tuple[list[Recipient], dict[str, Any]]:
        """Recipients and extra detail for one action at `due`."""
        kind = action.kind
        if kind == "notify_owner":
            if reassigned:
                return [Recipient("owner", NEW_OWNER, deliver_at=due)], {}
            if self.owner is None:
                return [
                    Recipient("owner", "(no owner)", note="the lead has no owner in a team")
                ], {}
            owner = self._person("owner", self.owner, self.owner, due)
            if owner.deliver_at is None and self.policy.quiet_hours.out_of_office == "escalate":
                return self._away(owner, due)
            return [owner], {}
        if kind == "notify_manager":
            managers = self.team.managers if self.team else []
            if not managers:
                return [Recipient("manager", "(no manager)", note="no team with managers")], {}
            return [self._person("manager", p, None, due) for p in managers], {}
        if kind == "notify_channel":
            return [self.channel(action.notify_channel, due)], {}
        if kind == "reassign":
            return [], self.candidates(due)
        return [], {"update_property": dict(action.update_property or {})}

    def channel(self, target: str | bool | None, due: datetime) -> Recipient:
        name = target if isinstance(target, str) else (self.team.channel if self.team else None)
        if not name:
            return Recipient("channel", "(no channel)", note="the team has no channel")
        base = Recipient("channel", name, slack=name)
        cal = self.calendar_of(None) if self.policy.quiet_hours.channels else None
        if cal is None:
            return _with(base, due, None)
        return _with(base, *self._deliver(cal, due))

    def _away(self, owner: Recipient, due: datetime) -> tuple[list[Recipient], dict[str, Any]]:
        """quiet_hours.out_of_office: escalate. The owner's DM waits until they are back; the
        team's managers (else its channel) hear now, in their place."""
        back = self._back(due)
        held = _with(owner, back, f"{owner.note}: held until they are back")
        if back is None:
            held = _with(owner, None, owner.note)
        why = f"{owner.name} is {owner.note}"
        managers = self.team.managers if self.team else []
        instead = [self._person("manager", p, None, due) for p in managers]
        if not instead and self.team is not None and self.team.channel:
            instead = [self.channel(None, due)]
        told = "; told meanwhile: " + ", ".join(r.name for r in instead) if instead else ""
        return [held, *instead], {"out_of_office": why, "reason": why + told}

    def _back(self, due: datetime) -> datetime | None:
        """When the out-of-office owner may get their DM: the first delivery time after the
        last day away."""
        member = self.owner
        cal = self.calendar_of(member)
        if member is None or cal is None:
            return None
        day = due.astimezone(cal.tz).date()
        for _ in range(len(member.out_of_office) + 1):
            away = out_of_office(member.out_of_office, day)
            if away is None:
                break
            day = away.to + timedelta(days=1)
        start = datetime.combine(day, time(0), tzinfo=cal.tz).astimezone(due.tzinfo)
        return self._deliver(cal, max(start, due))[0]

    def candidates(self, due: datetime) -> dict[str, Any]:
        """Round-robin candidates at `due`: team members other than the owner, in and on shift."""
        picked: list[str] = []
        skipped: dict[str, str] = {}
        for member in self.team.members if self.team else []:
            label = member.label()
            if member is self.owner:
                continue
            cal = self.calendar_of(member)
            if cal is None:
                skipped[label] = "no calendar"
                continue
            away = out_of_office(member.out_of_office, due.astimezone(cal.tz).date())
            if away is not None:
                skipped[label] = f"out of office until {away.to}"
            elif not cal.is_open(due):
                skipped[label] = "off shift"
            else:
                picked.append(label)
        return {"reassign": "round_robin", "candidates": picked, "skipped": skipped}

    def _person(self, role: str, person: Person, member: Member | None, due: datetime) -> Recipient:
        base = Recipient(role, person.label(), person.slack, person.email, person.owner_id)
        cal = self.calendar_of(member)
        if cal is None:
            return _with(base, due, None)
        if member is not None:
            away = out_of_office(member.out_of_office, due.astimezone(cal.tz).date())
            if away is not None:
                return _with(base, None, f"out of office until {away.to}")
        return _with(base, *self._deliver(cal, due))

    def _deliver(self, cal: BusinessCalendar, due: datetime) -> tuple[datetime | None, str | None]:
        """When a DM may go out: held outside the calendar and in quiet hours."""
        quiet = self.policy.quiet_hours
        t, note = due, None
        try:
            for _ in range(8):
                moved = False
                if quiet.outside_calendar and not cal.is_open(t):
                    t, note, moved = cal.next_open(t), "held until working hours", True
                if quiet.between and _in_range(t.astimezone(cal.tz).time(), *quiet.between):
                    t, note, moved = _range_end(t, cal, quiet.between[1]), "held: quiet hours", True
                if not moved:
                    break
        except CalendarError:
            return None, "the recipient's calendar never opens again"
        return t, note


def _with(base: Recipient, deliver_at: datetime | None, note: str | None) -> Recipient:
    return Recipient(base.role, base.name, base.slack, base.email, base.owner_id, deliver_at, note)


def _in_range(t: time, start: time, end: time) -> bool:
    return start <= t < end if start < end else (t >= start or t < end)


def _range_end(t: datetime, cal: BusinessCalendar, end: time) -> datetime:
    local = t.astimezone(cal.tz)
    candidate = datetime.combine(local.date(), end, tzinfo=cal.tz)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=cal.tz)
    return candidate.astimezone(t.tzinfo)
