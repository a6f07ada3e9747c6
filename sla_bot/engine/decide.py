"""The decision (pure): lead state + pinned rules + now -> what to send, what to write, when next.

`build_timeline` says what happens when; this module only turns "steps due by now that were not
decided yet" into outbox rows, and "the earliest step still to come" into `next_due_at`. The
decided step keys live in `state["done"]`, and every outbox key carries (lead, generation, step,
recipient), so replaying a decision can never send twice.

Ack: "I'm on it" silences first-touch and cadence nudges due before `ack.until`; at `until`, if
no touch came, the owner gets one `ack.expired` nudge and the ladder carries on.
Snooze: owner DMs due before `snooze_until` are held until then; managers, channels,
reassignment and the SLA clock are not affected.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sla_bot.engine import messages as msg
from sla_bot.engine.decision import Decision, OutboxRow
from sla_bot.engine.leads import Lead
from sla_bot.engine.owners import set_owner
from sla_bot.engine.reassign import pick_owner
from sla_bot.engine.timeline import timeline_of
from sla_bot.rules import RuleSet, Timeline
from sla_bot.rules.people import NEW_OWNER, Recipient
from sla_bot.rules.steps import CANCELLED, FIRED, PENDING, Step

# Steps due this long before the engine first heard of the contact (e.g. contacts found by the
# first reconciliation) are recorded, not sent: nobody wants a year of escalations at install.
BACKFILL_GRACE = timedelta(hours=1)
SILENCED_BY_ACK = ("warning", "escalation", "cadence_gap")
SNOOZED = ("warning", "escalation", "cadence_gap", "resume")
NOTED = ("escalation", "recycle", "disqualification")
CLOSING = {"recycled", "disqualified", "stopped"}


def decide(
    lead: Lead,
    pinned: RuleSet,
    now: datetime,
    *,
    rr: Mapping[str, datetime | None] | None = None,
    copy: bool = True,
) -> Decision:
    """Decide everything due at `now`. `rr`: owner_id -> last round-robin assignment.
    `copy=False`: decide on `lead` itself (the sweep's freshly read rows; saves a copy)."""
    out = Decision(lead.copy() if copy else lead, None)
    new = out.lead
    if new.is_closed and new.closed_reason in ("deleted", "merged", "not_found"):
        new.next_due_at = None
        return out
    tl = timeline_of(new, pinned, now)
    out.timeline = tl
    if tl is None:
        new.next_due_at = None
        return out
    _Decider(out, pinned, tl, now, rr or {}).run()
    return out


class _Decider:
    def __init__(
        self,
        out: Decision,
        rules: RuleSet,
        tl: Timeline,
        now: datetime,
        rr: Mapping[str, datetime | None],
    ) -> None:
        self.out, self.rules, self.tl, self.now, self.rr = out, rules, tl, now, rr
        self.lead = out.lead
        self.policy = rules.policies[out.lead.policy or ""]
        self.done: list[str] = self.lead.state.setdefault("done", [])
        self.version = msg.button_version(self.lead)
        self._facts: dict[str, Any] | None = None

    @property
    def facts(self) -> dict[str, Any]:
        if self._facts is None:
            self._facts = msg.lead_facts(self.lead, self.rules)
        return self._facts

    def run(self) -> None:
        lead, state = self.lead, self.lead.state
        ack = state.get("ack")
        touched_since_ack = ack is not None and any(
            datetime.fromisoformat(t["at"]) >= datetime.fromisoformat(ack["at"])
            for t in lead.touches
        )
        seen = state.get("seen_at")
        backfill = datetime.fromisoformat(seen) - BACKFILL_GRACE if seen else None
        for step in self.tl.steps:
            if step.state != FIRED or step.key in self.done:
                continue
            self.done.append(step.key)
            if backfill is not None and step.due_at < backfill:
                self.out.audit.append(("step.skipped", {"step": step.key, "why": "before known"}))
                continue
            if (
                ack
                and not touched_since_ack
                and step.kind in SILENCED_BY_ACK
                and step.due_at < datetime.fromisoformat(ack["until"])
            ):
                self.out.audit.append(("step.silenced", {"step": step.key, "by": ack["by"]}))
                continue
            self._fire(step)
        if ack and f"ack.{ack['n']}" not in self.done:
            until = datetime.fromisoformat(ack["until"])
            if touched_since_ack:
                self.done.append(f"ack.{ack['n']}")
            elif until <= self.now:
                self.done.append(f"ack.{ack['n']}")
                self._ack_expired(ack)
        self._next_touch_task()
        self._cancel_stale()
        self._status()
        self.lead.next_due_at = None if lead.status == "closed" else self._next_due()

    def _next_touch_task(self) -> None:
        """With `cadence.create_tasks`, the owner's HubSpot task queue shows the next touch."""
        cadence = self.policy.cadence
        if cadence is None or not cadence.create_tasks or self.lead.status == "closed":
            return
        upcoming = [s for s in self.tl.steps if s.kind == "cadence_gap" and s.state == PENDING]
        if not upcoming:
            return
        step = min(upcoming, key=lambda s: s.due_at)
        marker = f"task:{step.key}"
        if marker in self.done:
            return
        self.done.append(marker)
        n = len(self.lead.touches) + 1
        of = f" of {cadence.min_touches}" if n <= cadence.min_touches else ""
        name = self.facts.get("name") or f"contact {self.lead.object_id}"
        payload = {
            "op": "create_task",
            "contact_id": str(self.lead.object_id),
            "subject": f"Touch {n}{of}: {name}"[:200],
            "body": f"sla-bot: the next touch for {name} is due by this time ({step.key}).",
            "owner_id": self.lead.owner_id,
            "due": step.due_at.isoformat(),
        }
        self._hubspot_row(step.key, "create_task", payload)
        self.out.audit.append(("task.planned", {"step": step.key, "due": step.due_at.isoformat()}))

    # --- one step --------------------------------------------------------------------------------

    def _fire(self, step: Step) -> None:
        kind = msg.KINDS.get(step.kind, step.kind)
        new_owner = None
        if "reassign" in step.actions:
            new_owner = self._reassign(step)
        sent, skipped = [], []
        for r in step.recipients:
            if r.role == "owner" and (r.name == NEW_OWNER or new_owner is not None):
                if new_owner is not None:
                    continue  # the "reassigned" DM tells the new owner
                r = self._current_owner(r)
            if r.deliver_at is None:
                skipped.append({"name": r.name, "why": r.note})
                continue
            deliver = r.deliver_at
            snooze = self.lead.state.get("snooze_until")
            if snooze and r.role == "owner" and step.kind in SNOOZED:
                deliver = max(deliver, datetime.fromisoformat(snooze))
            self._slack(kind, step, r, deliver)
            sent.append({"role": r.role, "name": r.name, "deliver_at": deliver.isoformat()})
        self._hubspot(kind, step)
        detail = {"step": step.key, "kind": kind, "due_at": step.due_at.isoformat()}
        detail.update(sent=sent, skipped=skipped, detail=msg.jsonable(step.detail))
        self.out.audit.append(("step.fired", detail))

    def _payload(self, kind: str, step: Step, r: Recipient, **extra: Any) -> dict[str, Any]:
        d = step.detail
        deadline = self._deadline(step)
        cad = self.policy.cadence
        reason = d.get("reason") or "; ".join(d.get("because") or []) or None
        payload = {
            "kind": kind,
            "step_key": step.key,
            "thread_key": f"lead:{self.lead.id}",
            "recipient": msg.recipient_dict(r),
            "lead": {**self.facts, "version": self.version},
            "deadline": deadline.isoformat() if deadline else None,
            "timezone": self.tl.timezone,
            "touches": msg.touch_facts(
                self.lead, cad.min_touches if cad else None, cad.max_touches if cad else None
            ),
            "text": msg.text(kind, self.facts, reason=reason, step=step.key, **msg.names(extra)),
            "detail": msg.describe(step),
            "reason": reason,
        }
        payload.update(extra)
        return payload

    def _slack(self, kind: str, step: Step, r: Recipient, deliver: datetime, **extra: Any) -> None:
        key_step = extra.pop("key_step", step.key)
        key = (
            f"lead:{self.lead.id}:g{self.lead.generation}:{key_step}:{r.role}:{msg.recipient_id(r)}"
        )
        payload = self._payload(kind, step, r, **extra)
        self.out.rows.append(OutboxRow(key, "slack", kind, payload, step.due_at, deliver))

    def _hubspot_row(self, step_key: str, suffix: str, payload: dict[str, Any]) -> None:
        key = f"lead:{self.lead.id}:g{self.lead.generation}:{step_key}:hubspot:{suffix}"
        row = OutboxRow(key, "hubspot", payload["op"], payload, self.now, self.now)
        self.out.rows.append(row)

    def _hubspot(self, kind: str, step: Step) -> None:
        contact = str(self.lead.object_id)
        props = dict(step.detail.get("update_property") or {})
        if step.kind == "disqualification" and step.detail.get("revert"):
            previous = self.lead.state.get("previous", {})
            props |= {p: previous.get(p) for p in step.detail.get("properties", [])}
        if props:
            payload = {"op": "update_contact", "contact_id": contact, "properties": props}
            self._hubspot_row(step.key, "update_contact", msg.jsonable(payload))
        if step.kind in NOTED and set(step.actions) != {"notify_owner"}:
            body = f"sla-bot: {msg.text(kind, self.facts, reason=step.detail.get('reason'), step=step.key)}. {msg.describe(step)}"  # noqa: E501
            note = {"op": "create_note", "contact_id": contact, "body": body}
            note.update(owner_id=self.lead.owner_id, at=step.due_at.isoformat())
            self._hubspot_row(step.key, "create_note", note)

    # --- reassignment, ack -----------------------------------------------------------------------

    def _reassign(self, step: Step) -> str | None:
        team = self.tl.team or ""
        old = self.lead.owner_id
        picked = pick_owner(self.rules, team, step.detail.get("candidates", []), self.rr)
        if picked is None:
            self.out.audit.append(("reassign.skipped", {"step": step.key, "why": "no candidate"}))
            return None
        set_owner(self.lead, picked, self.now)
        self.out.assigned.append((team, picked))
        self._facts = None  # the owner changed
        self.version = msg.button_version(self.lead)
        payload = {
            "op": "update_contact",
            "contact_id": str(self.lead.object_id),
            "properties": {"hubspot_owner_id": picked},
        }
        self._hubspot_row(step.key, "owner", payload)
        old_r, new_r = self._owner_recipient(old), self._owner_recipient(picked)
        names = {"old_owner": msg.recipient_dict(old_r), "new_owner": msg.recipient_dict(new_r)}
        for r in (old_r, new_r):
            self._slack("reassigned", step, r, self.now, key_step=f"{step.key}.reassigned", **names)
        self.out.audit.append(("reassigned", {"step": step.key, "from": old, "to": picked}))
        return picked

    def _owner_recipient(self, owner_id: str | None) -> Recipient:
        found = self.rules.find_member(owner_id=owner_id) if owner_id else None
        if found is None:
            name = msg.owner_name(None, self.lead, owner_id) or "(no owner)"
            return Recipient("owner", name, owner_id=owner_id, deliver_at=self.now)
        m = found[1]
        return Recipient("owner", m.label(), m.slack, m.email, m.owner_id, self.now)

    def _current_owner(self, r: Recipient) -> Recipient:
        me = self._owner_recipient(self.lead.owner_id)
        return Recipient(me.role, me.name, me.slack, me.email, me.owner_id, r.deliver_at, r.note)

    def _ack_expired(self, ack: dict[str, Any]) -> None:
        step = Step("ack", f"ack.{ack['n']}.expired", datetime.fromisoformat(ack["until"]))
        r = self._owner_recipient(self.lead.owner_id)
        self._slack("ack.expired", step, r, self.now)
        self.out.audit.append(("ack.expired", {"ack": ack}))

    # --- bookkeeping -----------------------------------------------------------------------------

    def _deadline(self, step: Step) -> datetime | None:
        if step.kind in ("cadence_gap", "ack"):
            return step.due_at
        try:
            return self.tl.step("first_touch.breach").due_at
        except KeyError:
            return None

    def _cancel_stale(self) -> None:
        """Held DMs of a ladder a touch has stopped (or a cadence a connect ended) go unsent."""
        state = self.lead.state
        cancelled = set(state.get("cancelled_kinds", []))
        for s in self.tl.steps:
            if s.state != CANCELLED:
                continue
            kinds = (
                {"first_touch.warning", "ladder"} if s.kind in ("warning", "escalation") else set()
            )
            if s.kind == "cadence_gap" or self.tl.status in CLOSING | {"connected"}:
                kinds.add("cadence.due")
            for k in sorted(kinds - cancelled):
                self.out.cancel_kinds.append(k)
                cancelled.add(k)
        if cancelled:
            state["cancelled_kinds"] = sorted(cancelled)

    def _status(self) -> None:
        lead, status = self.lead, self.tl.status
        lead.state["timeline_status"] = status
        if status in CLOSING:
            if lead.status != "closed":
                lead.status, lead.closed_reason, lead.closed_at = "closed", status, self.now
                self.out.audit.append(("closed", {"reason": status}))
        elif status == "paused":
            lead.status = "paused"
        elif status not in ("ignored",):
            lead.status = "open"
            lead.closed_reason = lead.closed_at = None

    def _next_due(self) -> datetime | None:
        dues = [s.due_at for s in self.tl.steps if s.state == PENDING and s.key not in self.done]
        ack = self.lead.state.get("ack")
        if ack and f"ack.{ack['n']}" not in self.done:
            dues.append(datetime.fromisoformat(ack["until"]))
        return min(dues) if dues else None
