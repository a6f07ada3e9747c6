"""The timeline of one lead: every deadline and notification, computed from rules and facts only.

This is the single source of truth for "what happens when": `rules simulate` prints it and the
SLA engine runs it, using each step's occurrence `key` for idempotent outbox rows. It is pure: no
clock, no I/O; `now` is a parameter.

Facts are the contact's properties with their history (`History`: when each value was set, who
owned the lead when) and the touches so far (touches after `now` are ignored). Held time (a
pause, a stop or a disqualification that later clears) does not count: deadlines still ahead
when a hold starts move by its length (heldtime.py). Every step is "fired" (due at or before
`now`; with no `now`, at the end of the timeline, everything that would fire), "pending",
"cancelled" or "paused" (held with no end in sight); see conditions.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sla_bot.businesstime import BusinessCalendar
from sla_bot.durations import Duration
from sla_bot.rules import conditions as cond
from sla_bot.rules.heldtime import HeldTime
from sla_bot.rules.people import People, Recipient
from sla_bot.rules.policy import Action, Policy
from sla_bot.rules.ruleset import RuleSet
from sla_bot.rules.select import Props, instant_of, text_of
from sla_bot.rules.steps import (
    ASSIGNED,
    BREACH,
    CADENCE_DUE,
    CADENCE_END,
    CANCELLED,
    FIRED,
    LADDER,
    PAUSED,
    PENDING,
    PREMATURE_DQ,
    RECYCLE,
    RESUME,
    WARNING,
    History,
    Owner,
    Step,
    Timeline,
    Touch,
    business_seconds,
    cancel,
    occurrence,
)

__all__ = ["CANCELLED", "FIRED", "PAUSED", "PENDING", "History", "Step", "Timeline", "Touch"]
CLOCK_PROPERTY = {"created": "createdate", "owner_assigned": "hubspot_owner_assigneddate"}


def touches_needed(policy: Policy) -> int:
    """Touches a lead must get before it may be disqualified or recycled without blame."""
    dq = policy.premature_disqualification
    if dq and dq.min_touches:
        return dq.min_touches
    return policy.cadence.min_touches if policy.cadence else 1


def build_timeline(
    rules: RuleSet,
    portal_id: int | None,
    properties: Props,
    *,
    touches: Sequence[Touch] = (),
    now: datetime | None = None,
    policy: str | None = None,
    history: History | None = None,
) -> Timeline:
    """Everything that happens to one lead under the rules (or under `policy`, when pinned).

    The owner is `hubspot_owner_id` (or `hubspot_owner_email`, if the caller resolved it) looked
    up in the teams; the clock starts at `createdate` or `hubspot_owner_assigneddate`. Without
    `history`, current properties are taken to hold from `now` (or the latest fact).
    """
    if policy is not None:
        name: str | None = policy
        explanation = f"policy '{policy}' pinned by the lead's snapshot"
    else:
        route = rules.route(portal_id, properties)
        name, explanation = route.policy, route.explain()
    base = Timeline(portal_id, name, explanation, "ignored", now=now)
    if name is None:
        return base
    return _Builder(rules, rules.policies[name], properties, touches, now, history).build(base)


class _Builder:
    def __init__(
        self,
        rules: RuleSet,
        policy: Policy,
        props: Props,
        touches: Sequence[Touch],
        now: datetime | None,
        history: History | None,
    ) -> None:
        self.rules, self.p, self.props, self.now = rules, policy, props, now
        self.history = history
        owner_id = text_of(props.get("hubspot_owner_id"))
        email = text_of(props.get("hubspot_owner_email"))
        found = rules.find_member(owner_id=owner_id, email=email, prefer_team=policy.team)
        self.team_name = found[0] if found else policy.team
        self.member = found[1] if found else None
        label = self.member.label() if self.member else f"owner {owner_id}"
        self.owner = Owner(owner_id, label, self.team_name) if owner_id or self.member else None
        self.touches = tuple(
            sorted((t for t in touches if now is None or t.at <= now), key=lambda t: t.at)
        )
        self.reassign_at: list[datetime] = []

    def build(self, base: Timeline) -> Timeline:
        p = self.p
        base = replace(base, owner=self.owner, team=self.team_name)
        start = instant_of(self.props.get(CLOCK_PROPERTY[p.first_touch.clock_starts]))
        if start is None:
            why = "createdate is missing" if p.first_touch.clock_starts == "created" else "no owner"
            explanation = f"{base.match_explanation}; the clock has not started ({why})"
            return replace(base, status="waiting", match_explanation=explanation)
        self.start = start
        self.touches = tuple(t for t in self.touches if t.at >= start)
        at = self.now or (self.touches[-1].at if self.touches else start)
        first_year, last_year = min(start, at).year, max(start, at).year
        cal_name, self.cal = self._calendar(base, first_year, last_year)
        self.people = People(self.rules, p, self.team_name, self.member, (first_year, last_year))
        history = self.history or History.current(self.props, at, owner_since=start)
        self.history_ = history
        needed = touches_needed(p)
        facts = cond.read_facts(p, history, self.touches, start, at, needed)
        spans = [(h.start, h.end or max(h.start, at)) for h in facts.holds]
        self.time = HeldTime(self.cal, spans)
        steps = self._first_touch()
        steps = self._assignment() + steps + self._cadence(facts)
        steps = self._conditions(steps, facts, needed)
        steps = sorted((self._state(s) for s in steps), key=lambda s: (s.due_at, s.key))
        return replace(
            base,
            status=cond.status(
                steps, facts, p, touched=bool(self.touches), now=self.now, needed=needed
            ),
            calendar_name=cal_name,
            timezone=self.cal.tz.key,
            clock_start=start,
            business_start=self.cal.next_open(start) if p.first_touch.within.business else start,
            touches=self.touches,
            holds=facts.holds,
            steps=steps,
            facts=facts,
        )

    # --- building blocks -----------------------------------------------------------------------

    def _calendar(self, base: Timeline, first: int, last: int) -> tuple[str, BusinessCalendar]:
        """The deadline calendar: the one pinned when the clock started, else the owner's."""
        pinned = self.history.calendar if self.history else None
        if pinned is not None and pinned[0] in self.rules.calendars:
            name, tz = pinned
        else:
            team = self.rules.teams.get(self.team_name or "")
            found = self.rules.calendar_name(self.p, team, self.member)
            if found is None:
                raise ValueError(f"no calendar for this lead under policy {base.policy!r}")
            name = found
            tz = self.member.timezone if self.member and not self.p.calendar else None
        return name, self.rules.calendar(name, year=first, last_year=last, tz=tz)

    def add(self, t: datetime, d: Duration | timedelta) -> datetime:
        return self.time.add(t, d)

    def _step(
        self, kind: str, key: str, due: datetime, actions: Sequence[Action], **detail: Any
    ) -> Step:
        recipients: list[Recipient] = []
        merged = dict(detail)
        first = self.touches[0].at if self.touches else None
        # A reassignment earlier in the ladder (that no touch pre-empted) changed the owner.
        reassigned = any(t < due and (first is None or first > t) for t in self.reassign_at)
        for action in actions:  # in order: "reassign, notify_owner" tells the new owner
            got, extra = self.people.recipients(action, due, reassigned=reassigned)
            recipients += got
            merged |= extra
            reassigned = reassigned or action.kind == "reassign"
        return Step(kind, key, due, tuple(recipients), tuple(a.kind for a in actions), merged)

    def _state(self, s: Step) -> Step:
        if s.state in (CANCELLED, PAUSED):
            return s
        return replace(s, state=FIRED if self.now is None or s.due_at <= self.now else PENDING)

    # --- the owner is told ---------------------------------------------------------------------

    def _assignment(self) -> list[Step]:
        """The latest assignment made in HubSpot (or at routing) is announced to the owner."""
        actions = self.p.first_touch.on_assignment
        made = [c for c in self.history_.owners if c.owner_id and c.by == "hubspot"]
        if not actions or not made or self.owner is None:
            return []
        latest = made[-1]
        if latest.owner_id != self.owner.owner_id:
            return []  # sla-bot reassigned it since: the "reassigned" message told them
        # Assigned while the lead was held: they hear when the hold ends.
        due = self.time.add(max(latest.at, self.start), timedelta(0))
        key = occurrence(ASSIGNED, latest.at)
        return [self._step(ASSIGNED, key, due, actions, deadline=self._breach_iso)]

    # --- first touch and escalation ladder ----------------------------------------------------

    def _warning_at(self) -> datetime | None:
        ft = self.p.first_touch
        if ft.warning is None:
            return None
        at, within = ft.warning.at, ft.within
        if at.fraction is not None and within.business:
            left = round(within.business_seconds(self.cal) * at.fraction)
            return self.add(self.start, business_seconds(left))
        if at.fraction is not None:
            return self.add(self.start, within.as_timedelta() * at.fraction)
        assert at.before is not None
        if at.before.business:  # validation ensures the target is business time too
            left = within.business_seconds(self.cal) - at.before.business_seconds(self.cal)
            return self.add(self.start, business_seconds(max(left, 0)))
        left_wall = within.as_timedelta() - at.before.as_timedelta()
        return self.add(self.start, max(left_wall, timedelta(0)))

    def _first_touch(self) -> list[Step]:
        ft = self.p.first_touch
        breach = self.add(self.start, ft.within)
        self._breach_iso = breach.isoformat()
        steps: list[Step] = []
        warn = self._warning_at()
        if warn is not None and ft.warning is not None:
            steps.append(
                self._step(
                    WARNING,
                    WARNING,
                    warn,
                    ft.warning.do,
                    target=ft.within.text,
                    deadline=self._breach_iso,
                )
            )
        steps.append(self._step(BREACH, BREACH, breach, (), target=ft.within.text))
        for i, rung in enumerate(self.p.escalation, start=1):
            due = self.add(breach, rung.after)
            dues = [(f"ladder.{i}", due)]
            for r in range(1, (rung.repeat.times if rung.repeat else 0) + 1):
                assert rung.repeat is not None
                due = self.add(due, rung.repeat.every)
                dues.append((f"ladder.{i}#r{r}", due))
            for key, when in dues:
                steps.append(self._step(LADDER, key, when, rung.do, after=rung.after.text))
                if any(a.kind == "reassign" for a in rung.do):
                    self.reassign_at.append(when)
        if not self.touches:
            return steps
        # Everything above is about the first touch: a touch in time cancels it.
        first = self.touches[0].at
        late = self.time.elapsed(breach, first, business=ft.within.business)
        return [
            cancel(s, f"first touch at {first.isoformat()}")
            if first <= s.due_at
            else replace(s, detail={**s.detail, "late_by_seconds": int(late.total_seconds())})
            if s.kind == BREACH
            else s
            for s in steps
        ]

    # --- cadence -------------------------------------------------------------------------------

    def _cadence(self, facts: cond.Facts) -> list[Step]:
        """Gap nudges for the next missing touch, the window's end and recycling.

        A pause that ends at its follow-up date restarts the cadence there: a fresh window, and
        the next touch due within `max_gap` of that date (new occurrences, keyed by the date).
        """
        c = self.p.cadence
        if c is None:
            return []
        dates = sorted(r for _, r in facts.resumes)
        window = dates[-1] if dates else None
        end = self.add(window or self.start, c.within)
        touches, n = self.touches, len(self.touches)
        steps: list[Step] = []
        for k in range(2, min(c.min_touches, n + 1) + 1) if c.max_gap else ():
            assert c.max_gap is not None
            prev = touches[k - 2].at
            limit = touches[k - 1].at if k <= n else None
            anchor = max(
                (r for r in dates if r > prev and (limit is None or r <= limit)), default=None
            )
            due = self.add(anchor or prev, c.max_gap)
            if k == n + 1 and due >= end:
                break  # the window's end comes first
            step = self._step(
                CADENCE_DUE,
                occurrence(f"cadence.touch{k}.due", anchor),
                due,
                c.on_missed_gap,
                touch=k,
                max_gap=c.max_gap.text,
            )
            if k <= n and touches[k - 1].at <= due:
                step = cancel(step, f"touch {k} at {touches[k - 1].at.isoformat()}")
            steps.append(step)
        done_at = end
        if c.max_touches is not None and n >= c.max_touches:
            done_at = min(end, touches[c.max_touches - 1].at)
        count = sum(1 for t in touches if t.at <= done_at)
        steps.append(
            self._step(
                CADENCE_END,
                occurrence(CADENCE_END, window),
                done_at,
                (),
                touches=count,
                min_touches=c.min_touches,
                max_touches=c.max_touches,
                short_by=max(c.min_touches - count, 0),
            )
        )
        r = self.p.recycle
        if r is not None:
            step = self._step(
                RECYCLE,
                occurrence(RECYCLE, window),
                done_at,
                (),
                reason=r.reason,
                update_property=dict(r.update_property),
                touches=count,
            )
            if r.notify_channel:
                channel = self.people.channel(r.notify_channel, done_at)
                step = replace(
                    step, recipients=(channel,), actions=("update_property", "notify_channel")
                )
            steps.append(step)
        return steps

    # --- conditions from properties -------------------------------------------------------------

    def _conditions(self, steps: list[Step], facts: cond.Facts, needed: int) -> list[Step]:
        steps = cond.after_connect(steps, facts)
        dq = self.p.premature_disqualification
        if dq:
            recycled = [s.due_at for s in steps if s.kind == RECYCLE and s.state != CANCELLED]
            for d in facts.disqualifications:
                if d.touches_by_then >= needed:
                    continue  # enough touches: a legitimate disqualification
                if facts.connected_at and facts.connected_at <= d.at:
                    continue
                if any(r <= d.at for r in recycled):
                    continue  # the status recycling set is not checked
                steps.append(
                    self._step(
                        PREMATURE_DQ,
                        occurrence(PREMATURE_DQ, d.at),
                        d.at,
                        dq.do,
                        touches=d.touches_by_then,
                        min_touches=needed,
                        revert=dq.revert,
                        properties=sorted(dq.when.properties()),
                        previous=d.previous,
                        because=d.reasons,
                    )
                )
        steps = cond.after_close(steps, facts, revert=bool(dq and dq.revert), needed=needed)
        steps = cond.hold(steps, facts)
        pause = self.p.pause
        for since, date in facts.resumes:
            steps.append(
                self._step(
                    RESUME,
                    occurrence(RESUME, date),
                    date,
                    [Action(notify_owner=True)],
                    property=pause.resume_property if pause else None,
                    paused_since=since.isoformat(),
                )
            )
        return steps
