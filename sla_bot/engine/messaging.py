"""The messages of one decision: who is told what, and what happens to undelivered ones.

The decision (decide.py) says which steps happen; this says how that reaches people: one Slack
row per recipient, addressed to the lead's owner as it is now, at most one nudge per recipient
per decision, and undelivered rows that follow the lead (withdrawn when the lead closes,
connects or is held, or when their step no longer applies; re-sent to a new owner; superseded by
a newer message to the same person).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sla_bot.engine import notifications as note
from sla_bot.engine.effects import Decision, OutboxRow, PendingRow
from sla_bot.rules import RuleSet, Timeline
from sla_bot.rules.people import NEW_OWNER, Recipient, noise_for
from sla_bot.rules.steps import ACK_EXPIRED, FIRED, NUDGES, PENDING, REASSIGNED, Step

# Nudges one newer message replaces; a handover ("reassigned") always gets through.
COALESCED = NUDGES - {REASSIGNED}


class Messages:
    def __init__(
        self,
        out: Decision,
        rules: RuleSet,
        tl: Timeline,
        now: datetime,
        pending: list[PendingRow],
        deadline: Callable[[Step], datetime | None],
    ) -> None:
        self.out, self.rules, self.tl, self.now = out, rules, tl, now
        self.lead = out.lead
        self.pending = pending
        self.deadline = deadline
        cad = rules.policies[self.lead.policy or ""].cadence
        self.cadence = (cad.min_touches, cad.max_touches) if cad else (None, None)
        self.noise = noise_for(rules, self.lead.policy, tl.team)
        self.rows: list[OutboxRow] = []

    def add(
        self,
        kind: str,
        step: Step,
        r: Recipient,
        deliver: datetime,
        *,
        key: str | None = None,
        **extra: Any,
    ) -> None:
        """One Slack row for `r` about `step`."""
        d = step.detail
        reason = d.get("reason") or "; ".join(d.get("because") or []) or None
        payload = note.message(
            kind,
            self.lead,
            self.rules,
            r,
            step_key=step.key,
            deadline=self.deadline(step),
            timezone=self.tl.timezone,
            cadence=self.cadence,
            detail=note.describe(step, self.tl.timezone),
            reason=reason,
            **extra,
        )
        rid = note.recipient_id(r)
        batch = note.batching(self.noise, kind, r, self.lead.portal_id)
        if batch is not None:
            payload["batch"] = batch
        key = key or f"lead:{self.lead.id}:{step.key}:{r.role}:{rid}"
        who = f"{r.role}:{r.owner_id if r.role == 'owner' and r.owner_id else rid}"
        self.rows.append(
            OutboxRow(key, "slack", kind, payload, step.due_at, deliver, step.key, who)
        )

    def as_current_owner(self, r: Recipient) -> Recipient:
        """The timeline's owner recipient, made the lead's owner now (after a reassignment)."""
        if r.name != NEW_OWNER and r.owner_id == self.lead.owner_id:
            return r
        me = note.owner_recipient(self.rules, self.lead, self.lead.owner_id)
        return Recipient(me.role, me.name, me.slack, me.email, me.owner_id, r.deliver_at, r.note)

    def finish(self, quiet: bool) -> list[OutboxRow]:
        """Settle the undelivered rows and this decision's own; returns the rows to add."""
        self._follow_pending(quiet)
        self._one_per_recipient()
        return self.rows

    # --- undelivered messages follow the lead ----------------------------------------------------

    def _follow_pending(self, quiet: bool) -> None:
        live = {s.key: s for s in self.tl.steps if s.state in (FIRED, PENDING)}
        for row in self.pending:
            if row.kind not in NUDGES:
                continue
            if quiet:
                self._withdraw(row, f"lead is {self.tl.status}")
                continue
            if row.kind in (REASSIGNED, ACK_EXPIRED):
                if row.kind == ACK_EXPIRED and self.lead.state.ack is None:
                    self._withdraw(row, "the owner changed")
                continue
            step = live.get(row.step or "")
            if step is None:
                gone = next((s for s in self.tl.steps if s.key == row.step), None)
                self._withdraw(row, gone.why if gone is not None else "no longer due")
                continue
            if row.owner_id is not None and row.owner_id != self.lead.owner_id:
                self._withdraw(row, f"the lead now belongs to {self.lead.owner_id}")
                self._retarget(step)

    def _retarget(self, step: Step) -> None:
        """A withdrawn owner message goes to the current owner instead, with fresh buttons."""
        if step.state != FIRED:
            return
        owner = next((r for r in step.recipients if r.role == "owner"), None)
        if owner is None:
            return
        r = self.as_current_owner(owner)
        if r.deliver_at is None or r.owner_id is None:
            return
        epoch = len(self.lead.state.owners)
        key = f"lead:{self.lead.id}:{step.key}:owner:{note.recipient_id(r)}:o{epoch}"
        self.add(step.kind, step, r, max(r.deliver_at, self.now), key=key)

    def _withdraw(self, row: PendingRow, why: str) -> None:
        if row.id not in self.out.withdrawn:
            self.out.withdrawn[row.id] = why
            self.out.audit.append(("message.withdrawn", {"step": row.step, "why": why}))

    def _one_per_recipient(self) -> None:
        """Each recipient gets the newest nudge of this decision; it also supersedes their
        undelivered older ones. Owner nudges go to whoever owns the lead after the decision."""
        newest: dict[str, OutboxRow] = {}
        for row in self.rows:
            if row.kind in COALESCED and row.recipient:
                newest[row.recipient] = row
        owner = f"owner:{self.lead.owner_id}"
        kept = []
        for row in self.rows:
            latest = newest.get(row.recipient or "")
            why = None
            if row.kind in COALESCED and latest is not None and latest is not row:
                why = f"superseded by {latest.step}"
            elif (
                row.kind in COALESCED
                and (row.recipient or "").startswith("owner:")
                and row.recipient != owner  # reassigned later in this same decision
            ):
                why = f"the lead now belongs to {self.lead.owner_id}"
            if why is not None:
                self.out.audit.append(("message.superseded", {"step": row.step, "why": why}))
                continue
            kept.append(row)
        self.rows = kept
        for row in self.pending:
            latest = newest.get(row.recipient or "")
            if row.kind in COALESCED and latest is not None and row.id not in self.out.withdrawn:
                self._withdraw(row, f"superseded by {latest.step}")
