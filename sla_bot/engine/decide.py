"""The decision (pure): lead + pinned rules + now (+ its undelivered messages) -> what to send,
what to withdraw, what to write, and when to look again.

`build_timeline` says what happens when; this module turns "step occurrences due by now that
were not decided yet" into outbox rows and "the earliest step still to come" into `next_due_at`.
Each decided occurrence is kept in `state.decided` with what was done (sent, silenced, skipped),
and outbox keys carry (lead, occurrence, recipient), so replaying a decision never sends twice,
while a new occurrence (a second disqualification, a cadence restarted at a follow-up date) can.

Re-planning held time (docs/engine.md has a worked timeline):
- Pause, a stop that clears, a disqualification that is undone: the timeline skips the held time,
  so the ladder resumes from the stage it had reached; nothing that "fell due" while held fires.
- While a lead is held, closed or connected, no nudge goes out, and undelivered ones are withdrawn.
- Snooze: the owner's DMs are held until it ends; only the latest of them is then delivered.
- "I'm on it": first-touch and cadence nudges due before it ends are silenced; then, without a
  touch, one reminder (`ack.expired`), and the ladder carries on with the steps due after that.
- One message per recipient per decision (a worker catching up after an outage sends the latest
  state, not a burst), and a newer message to a recipient supersedes an undelivered older one.
- Undelivered owner messages follow the owner: an owner change withdraws them and sends the
  current ones to the new owner, with fresh buttons.
- No automatic reassignment overrides an owner a person chose after the ladder started.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sla_bot.engine import notifications as note
from sla_bot.engine.effects import Decision, OutboxRow, PendingRow
from sla_bot.engine.leads import Lead
from sla_bot.engine.messaging import Messages
from sla_bot.engine.owners import BY_ROUND_ROBIN, reassigned_by_a_person_since, set_owner
from sla_bot.engine.reassign import pick_owner
from sla_bot.engine.schedule import timeline_of
from sla_bot.engine.state import Ack
from sla_bot.rules import RuleSet, Timeline
from sla_bot.rules.steps import (
    ACK_EXPIRED,
    ASSIGNED,
    BREACH,
    CADENCE_DUE,
    FIRED,
    LADDER,
    NUDGES,
    PAUSED,
    PENDING,
    PREMATURE_DQ,
    REASSIGNED,
    RECYCLE,
    RESUME,
    WARNING,
    Step,
)

# Steps due this long before the engine first heard of the contact (e.g. contacts found by the
# first reconciliation) are recorded, not sent: nobody wants a year of escalations at install.
BACKFILL_GRACE = timedelta(hours=1)
SILENCED_BY_ACK = (WARNING, LADDER, CADENCE_DUE)
HELD_BY_SNOOZE = (ASSIGNED, WARNING, LADDER, CADENCE_DUE, RESUME)
NOTED = (LADDER, RECYCLE, PREMATURE_DQ)
CLOSING = {"recycled", "disqualified", "stopped"}
QUIET = CLOSING | {"paused", "connected"}  # no nudge goes out in these states
FINAL = ("deleted", "merged", "not_found")
SENT = "sent"


def decide(
    lead: Lead,
    pinned: RuleSet,
    now: datetime,
    *,
    rr: Mapping[str, datetime | None] | None = None,
    pending: Iterable[PendingRow] = (),
    copy: bool = True,
) -> Decision:
    """Decide everything due at `now`. `rr`: owner_id -> last round-robin assignment;
    `pending`: the lead's undelivered Slack rows; `copy=False`: decide on `lead` itself."""
    out = Decision(lead.copy() if copy else lead, None)
    new = out.lead
    if new.is_closed and new.closed_reason in FINAL:
        new.next_due_at = None
        return out
    tl = timeline_of(new, pinned, now)
    out.timeline = tl
    if tl is None:
        new.next_due_at = None
        return out
    _Decider(out, pinned, tl, now, rr or {}, list(pending)).run()
    return out


class _Decider:
    def __init__(
        self,
        out: Decision,
        rules: RuleSet,
        tl: Timeline,
        now: datetime,
        rr: Mapping[str, datetime | None],
        pending: list[PendingRow],
    ) -> None:
        self.out, self.rules, self.tl, self.now, self.rr = out, rules, tl, now, rr
        self.pending = pending
        self.lead = out.lead
        self.state = out.lead.state
        self.policy = rules.policies[out.lead.policy or ""]
        self.messages = Messages(out, rules, tl, now, pending, self._deadline)

    def run(self) -> None:
        lead, state, tl = self.lead, self.state, self.tl
        state.status = tl.status
        if state.calendar is None and tl.calendar_name and tl.timezone:
            state.calendar = (tl.calendar_name, tl.timezone)  # deadlines keep this calendar
        quiet = tl.status in QUIET
        for step in tl.steps:
            if step.state != FIRED or step.key in state.decided:
                continue
            state.decided[step.key] = self._decide(step, quiet)
        self._ack(quiet)
        self._next_touch_task()
        self.out.rows += self.messages.finish(quiet)
        self._status()
        lead.next_due_at = None if lead.status == "closed" else self._next_due()

    # --- one step --------------------------------------------------------------------------------

    def _decide(self, step: Step, quiet: bool) -> str:
        seen = self.state.first_seen_at
        if seen is not None and step.due_at < seen - BACKFILL_GRACE:
            self.out.audit.append(("step.skipped", {"step": step.key, "why": "before known"}))
            return "skipped: due before sla-bot knew the lead"
        if quiet and step.kind in NUDGES:
            why = f"lead is {self.tl.status}"
            self.out.audit.append(("step.skipped", {"step": step.key, "why": why}))
            return f"skipped: {why}"
        ack = self.state.ack
        if (
            ack is not None
            and not self._touched_since(ack.at)
            and step.kind in SILENCED_BY_ACK
            and step.due_at < ack.until
        ):
            self.out.audit.append(("step.silenced", {"step": step.key, "by": ack.by}))
            return f"silenced: on it ({ack.by})"
        self._fire(step)
        return SENT

    def _fire(self, step: Step) -> None:
        new_owner = self._reassign(step) if "reassign" in step.actions else None
        sent, skipped = [], []
        for r in step.recipients:
            if r.role == "owner":
                if new_owner is not None:
                    continue  # the "reassigned" message tells the new owner
                r = self.messages.as_current_owner(r)
            if r.deliver_at is None:
                skipped.append({"name": r.name, "why": r.note})
                continue
            deliver = r.deliver_at
            snooze = self.state.snooze
            if snooze and r.role == "owner" and step.kind in HELD_BY_SNOOZE:
                deliver = max(deliver, snooze.until)
            self.messages.add(step.kind, step, r, deliver)
            sent.append({"role": r.role, "name": r.name, "deliver_at": deliver.isoformat()})
        self._hubspot(step)
        detail = {"step": step.key, "kind": step.kind, "due_at": step.due_at.isoformat()}
        detail.update(sent=sent, skipped=skipped, detail=note.jsonable(step.detail))
        self.out.audit.append(("step.fired", detail))

    def _hubspot_row(self, step_key: str, suffix: str, payload: dict[str, Any]) -> None:
        key = f"lead:{self.lead.id}:{step_key}:hubspot:{suffix}"
        row = OutboxRow(key, "hubspot", payload["op"], payload, self.now, self.now, step_key)
        self.out.rows.append(row)

    def _hubspot(self, step: Step) -> None:
        contact = str(self.lead.object_id)
        props = dict(step.detail.get("update_property") or {})
        if step.kind == PREMATURE_DQ and step.detail.get("revert"):
            previous = step.detail.get("previous") or {}
            props |= {p: previous.get(p) for p in step.detail.get("properties", [])}
        if props:
            payload = {"op": "update_contact", "contact_id": contact, "properties": props}
            self._hubspot_row(step.key, "update_contact", note.jsonable(payload))
        if step.kind in NOTED and set(step.actions) != {"notify_owner"}:
            facts = note.lead_facts(self.lead, self.rules)
            said = note.text(step.kind, facts, reason=step.detail.get("reason"), step=step.key)
            body = f"sla-bot: {said}. {note.describe(step, self.tl.timezone)}."
            payload = {"op": "create_note", "contact_id": contact, "body": body}
            payload.update(owner_id=self.lead.owner_id, at=step.due_at.isoformat())
            self._hubspot_row(step.key, "create_note", payload)

    # --- owners: reassignment, the current owner -------------------------------------------

    def _reassign(self, step: Step) -> str | None:
        team = self.tl.team or ""
        old = self.lead.owner_id
        started = self.tl.clock_start
        if started is not None and reassigned_by_a_person_since(self.lead, started):
            why = "a person chose the owner after the clock started"
            self.out.audit.append(("reassign.skipped", {"step": step.key, "why": why}))
            return None
        picked = pick_owner(self.rules, team, step.detail.get("candidates", []), self.rr)
        if picked is None:
            self.out.audit.append(("reassign.skipped", {"step": step.key, "why": "no candidate"}))
            return None
        set_owner(self.lead, picked, self.now, by=BY_ROUND_ROBIN)
        self.out.assigned.append((team, picked))
        payload = {
            "op": "update_contact",
            "contact_id": str(self.lead.object_id),
            "properties": {"hubspot_owner_id": picked},
            # HubSpot may have a newer owner we have not heard of yet: never overwrite it.
            "unless_changed": {"hubspot_owner_id": old},
        }
        self._hubspot_row(step.key, "owner", payload)
        old_r = note.owner_recipient(self.rules, self.lead, old, self.now)
        new_r = note.owner_recipient(self.rules, self.lead, picked, self.now)
        for r in (old_r, new_r):
            self.messages.add(
                REASSIGNED,
                step,
                r,
                self.now,
                key=f"lead:{self.lead.id}:{step.key}.reassigned:owner:{note.recipient_id(r)}",
                old_owner=old_r,
                new_owner=new_r,
            )
        self.out.audit.append(("reassigned", {"step": step.key, "from": old, "to": picked}))
        return picked

    # --- "I'm on it", tasks --------------------------------------------------------------------

    def _touched_since(self, at: datetime) -> bool:
        return any(t.at >= at for t in self.lead.touches)

    def _ack(self, quiet: bool) -> None:
        ack = self.state.ack
        if ack is None or f"ack.{ack.n}" in self.state.decided:
            return
        key = f"ack.{ack.n}"
        if self._touched_since(ack.at):
            self.state.decided[key] = "kept: a touch came"
        elif ack.until <= self.now:
            if quiet:
                self.state.decided[key] = f"skipped: lead is {self.tl.status}"
                return
            self.state.decided[key] = SENT
            self._ack_expired(ack)

    def _ack_expired(self, ack: Ack) -> None:
        step = Step(ACK_EXPIRED, f"ack.{ack.n}", ack.until)
        r = note.owner_recipient(self.rules, self.lead, self.lead.owner_id, self.now)
        self.messages.add(ACK_EXPIRED, step, r, self.now)
        self.out.audit.append(("ack.expired", ack.model_dump(mode="json")))

    def _next_touch_task(self) -> None:
        """With `cadence.create_tasks`, the owner's HubSpot task queue shows the next touch."""
        cadence = self.policy.cadence
        if cadence is None or not cadence.create_tasks or self.tl.status in QUIET:
            return
        upcoming = [s for s in self.tl.steps if s.kind == CADENCE_DUE and s.state == PENDING]
        if not upcoming:
            return
        step = min(upcoming, key=lambda s: s.due_at)
        marker = f"task:{step.key}"
        if marker in self.state.decided:
            return
        self.state.decided[marker] = "planned"
        facts = note.lead_facts(self.lead, self.rules)
        touch = note.next_touch(len(self.lead.touches) + 1, cadence.min_touches)
        payload = {
            "op": "create_task",
            "contact_id": str(self.lead.object_id),
            "subject": f"{touch}: {facts['name']}"[:200],
            "body": f"sla-bot: {touch.lower()} for {facts['name']} is due by this time.",
            "owner_id": self.lead.owner_id,
            "due": step.due_at.isoformat(),
        }
        self._hubspot_row(step.key, "create_task", payload)
        self.out.audit.append(("task.planned", {"step": step.key, "due": step.due_at.isoformat()}))

    # --- bookkeeping -----------------------------------------------------------------------------

    def _due(self, key: str) -> datetime | None:
        try:
            return self.tl.step(key).due_at
        except KeyError:
            return None

    def _deadline(self, step: Step) -> datetime | None:
        if step.kind in (CADENCE_DUE, ACK_EXPIRED):
            return step.due_at
        if step.kind == ASSIGNED and self.lead.touches:
            upcoming = [
                s.due_at for s in self.tl.steps if s.kind == CADENCE_DUE and s.state == PENDING
            ]
            return min(upcoming, default=None)
        return self._due(BREACH)

    def _status(self) -> None:
        lead, status = self.lead, self.tl.status
        if status in CLOSING:
            if lead.status != "closed":
                lead.status, lead.closed_reason, lead.closed_at = "closed", status, self.now
                lead.state.button_version += 1
                self.out.audit.append(("closed", {"reason": status}))
        elif status == "paused":
            lead.status = "paused"
        elif status not in ("ignored",):
            if lead.status == "closed":
                self.out.audit.append(("reopened", {"status": status}))
            lead.status = "open"
            lead.closed_reason = lead.closed_at = None

    def _next_due(self) -> datetime | None:
        decided = self.state.decided
        dues = [s.due_at for s in self.tl.steps if s.state == PENDING and s.key not in decided]
        ack = self.state.ack
        if ack and f"ack.{ack.n}" not in decided:
            dues.append(ack.until)
        return min(dues) if dues else None


__all__ = ["BACKFILL_GRACE", "Decision", "PAUSED", "decide"]
