"""Replay a recorded history under candidate rules, with the worker's own code (pure, no I/O).

The worker runs four jobs over the database: apply (events -> leads), fetch (HubSpot -> leads),
sweep (due leads -> decisions -> outbox) and deliver (outbox -> Slack/HubSpot), plus the Slack
buttons. The replay runs the same pure functions on leads held in memory, on a clock that jumps
from input to input and to every `next_due_at` the decisions produce:

- events are applied with `apply_events` at the instant the worker applied them;
- contacts read from HubSpot with `apply_fetched`, at the instant they were read;
- button presses with `actions.perform` and the action's pure change;
- a lead due at T is decided with `decide` at the instant the sweep would have: the first
  recorded sweep pass at or after T (within `slack`), else T; leads due in one pass are decided
  in the sweep's order (next_due_at, id), sharing the round-robin times as the sweep does;
- a decided Slack message stays undelivered (`pending` for later decisions) until the real
  deliverer sent it (the row with the same key, decided at the same instant), or else until
  the deliver pass at its delivery time.

Nothing here reads the database or the network: `History` is all it is given.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sla_bot.backtest.history import (
    DECIDE,
    Button,
    EventBatch,
    Fetched,
    History,
    Input,
    Ticks,
)
from sla_bot.engine import actions
from sla_bot.engine.apply import apply_events, close_merged
from sla_bot.engine.decide import decide
from sla_bot.engine.effects import Decision, OutboxRow, PendingRow
from sla_bot.engine.events import FINAL, new_lead
from sla_bot.engine.leads import Lead
from sla_bot.engine.pinning import pinned
from sla_bot.engine.sweep import RETRY_BROKEN
from sla_bot.fetching import apply_fetched
from sla_bot.rules import LoadedRules

Entries = list[tuple[str, dict[str, Any]]]


@dataclass
class ReplayedRow:
    """One outbox row the replay decided, as the worker would have written it."""

    id: int
    lead_id: int
    portal_id: int
    object_id: int
    key: str
    channel: str
    kind: str
    step: str | None
    recipient: str | None
    payload: dict[str, Any]
    decided_at: datetime
    due_at: datetime | None
    deliver_at: datetime
    sent_at: datetime  # when it stops being undelivered: recorded, else the deliver tick
    status: str = "pending"  # pending | cancelled (sent is `sent_at <= now`)
    error: str | None = None
    tag: Any = None  # what an observer counted the row under (undone if it is withdrawn)


class Observer(Protocol):
    """What a report listens to (report.py); every method is called in time order."""

    def changed(
        self,
        lead: Lead,
        at: datetime,
        source: str,
        entries: Entries,
        rows: list[ReplayedRow],
        owner_before: str | None,
    ) -> None: ...

    def cancelled(self, row: ReplayedRow, at: datetime) -> None: ...


class _Nobody:
    def changed(self, *args: Any) -> None:
        pass

    def cancelled(self, *args: Any) -> None:
        pass


@dataclass
class Outcome:
    """What a replay produced (rows and audit only when asked to keep them)."""

    leads: dict[tuple[int, int], Lead]
    rows: list[ReplayedRow] = field(default_factory=list)
    audit: list[tuple[int, datetime, str, dict[str, Any]]] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)  # buttons that could not apply, why
    errors: int = 0  # decisions that raised (audited as `error`, retried like the sweep does)


class Replay:
    def __init__(
        self,
        history: History,
        loaded: LoadedRules,
        *,
        slack: timedelta = timedelta(seconds=5),
        observer: Observer | None = None,
        keep: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.h = history
        self.loaded = loaded
        self.ticks = Ticks(history.ticks, history.passes, slack)
        self.observer = observer or _Nobody()
        self.keep = keep
        self.progress = progress
        self.leads: dict[tuple[int, int], Lead] = {}
        self.pending: dict[int, list[ReplayedRow]] = {}  # lead id -> rows not yet delivered
        self.keys: set[str] = set()
        self.rr: dict[int, dict[str, datetime | None]] = {
            p: dict(m) for p, m in history.round_robin.items()
        }
        self.due: list[tuple[datetime, int, datetime, int, tuple[int, int]]] = []
        self.next_id = 1
        self.synthetic = -1  # ids for leads the service never stored (--from-hubspot)
        self.out = Outcome(self.leads)

    # --- the clock -------------------------------------------------------------------------------

    def run(self, until: datetime) -> Outcome:
        """Replay every input before `until`, and every decision due before it."""
        inputs = self.h.inputs
        i, n = 0, len(inputs)
        while True:
            nxt = inputs[i] if i < n else None
            while self.due and (
                nxt is None or (self.due[0][0], self.due[0][1]) < (nxt.at, nxt.phase)
            ):
                if self.due[0][0] >= until:
                    break
                tick, _, when, _, key = heapq.heappop(self.due)
                lead = self.leads[key]
                if lead.next_due_at == when:
                    self._decide(lead, tick)
            if nxt is None or nxt.at >= until:
                break
            self._input(nxt)
            i += 1
            if self.progress is not None and i % 1000 == 0:
                self.progress(i)
        if self.progress is not None:
            self.progress(n)
        return self.out

    def _schedule(self, lead: Lead) -> None:
        when = lead.next_due_at
        if when is not None and lead.id is not None:
            tick = self.ticks.after(when)
            key = (lead.portal_id, lead.object_id)
            heapq.heappush(self.due, (tick, DECIDE, when, lead.id, key))

    # --- inputs ----------------------------------------------------------------------------------

    def _input(self, item: Input) -> None:
        if isinstance(item, EventBatch):
            self._apply(item)
        elif isinstance(item, Fetched):
            self._fetched(item)
        else:
            self._button(item)

    def _lead_id(self, key: tuple[int, int]) -> int:
        known = self.h.lead_ids.get(key)
        if known is not None:
            return known
        self.synthetic -= 1
        return self.synthetic

    def _apply(self, batch: EventBatch) -> None:
        key = (batch.portal_id, batch.object_id)
        lead = self.leads.get(key)
        if lead is None:
            lead = new_lead(*key)
            lead.id = self._lead_id(key)
            lead.state.first_seen_at = batch.at
            self.leads[key] = lead
        owner = lead.owner_id
        done = apply_events(
            lead, list(batch.events), self.loaded, now=batch.at, fetching=self.h.fetching
        )
        self._store(lead, batch.at, "apply", done.entries, owner)
        for other in done.closing:
            merged = self.leads.get((batch.portal_id, other))
            if merged is not None and merged.closed_reason != "merged":
                was = merged.owner_id
                entries = close_merged(merged, into=batch.object_id, now=batch.at)
                self._store(merged, batch.at, "apply", entries, was)

    def _fetched(self, item: Fetched) -> None:
        lead = self.leads.get((item.portal_id, item.object_id))
        if lead is None or not lead.needs_fetch:
            self._refuse("fetch of a lead not waiting for one")
            return
        owner = lead.owner_id
        entries = apply_fetched(
            lead, item.values, self.loaded, now=item.at, owner_name=item.owner_name
        )
        self._store(lead, item.at, "fetch", entries, owner)

    def _store(
        self,
        lead: Lead,
        at: datetime,
        source: str,
        entries: Entries,
        owner_before: str | None,
        rows: Iterable[ReplayedRow] = (),
    ) -> None:
        """What apply.store does: a lead closed for good loses its undelivered rows."""
        if lead.closed_reason in FINAL:
            for row in self._undelivered(lead, at):
                self._cancel(row, at, None)
        self._audit(lead, at, entries)
        self.observer.changed(lead, at, source, entries, list(rows), owner_before)
        self._schedule(lead)

    def _button(self, press: Button) -> None:
        lead = self.leads.get((press.portal_id, press.object_id))
        if lead is None:
            self._refuse("the lead did not exist yet")
            return
        d, at = press.detail, press.at
        by = str(d.get("by") or "")
        owner = lead.owner_id
        picked = None
        try:
            if press.kind == "ack":
                until = datetime.fromisoformat(d["until"])
                change = lambda lead: actions.ack_change(lead, by=by, now=at, until=until)  # noqa: E731
            elif press.kind == "snooze":
                asked = datetime.fromisoformat(d.get("asked") or d["until"])
                change = lambda lead: actions.snooze_change(lead, by=by, until=asked, now=at)  # noqa: E731
            elif press.kind == "touch":
                outcome = "connect" if d.get("connect") else "attempt"
                kind, note = d.get("kind") or "call", d.get("note") or ""
                change = lambda lead: actions.touch_change(  # noqa: E731
                    lead, by=by, at=at, kind=kind, outcome=outcome, note=note
                )
            else:
                target = d.get("to")
                if d.get("round_robin"):
                    last = self.rr.get(lead.portal_id, {})
                    picked = actions.round_robin_target(self.loaded.ruleset, lead, at, last)
                    if picked is None:
                        raise actions.ActionRefused("nobody in the team is available")
                    target = picked
                rules = self.loaded.ruleset
                change = lambda lead: actions.reassign_change(  # noqa: E731
                    lead, rules, by=by, target=str(target), now=at, round_robin=picked is not None
                )
            done = actions.perform(lead, at, change)
        except actions.ActionRefused as exc:
            self._refuse(f"{press.kind}: {exc}")
            return
        if picked is not None:
            self.rr.setdefault(lead.portal_id, {})[picked] = at
        rows = [self._row(lead, r, at) for r in done.rows]
        self._store(lead, at, "button", done.entries, owner, [r for r in rows if r])

    def _refuse(self, why: str) -> None:
        self.out.refused[why] = self.out.refused.get(why, 0) + 1

    # --- the sweep -------------------------------------------------------------------------------

    def _decide(self, lead: Lead, now: datetime) -> None:
        assert lead.id is not None
        pending = [
            PendingRow(r.id, r.kind, r.step, r.recipient, _owner_of(r.recipient))
            for r in self._undelivered(lead, now)
            if r.channel == "slack"
        ]
        owner = lead.owner_id
        try:
            rules = pinned(self.loaded, lead.policy_hash, lead.policy_snapshot or {})
            rr = self.rr.get(lead.portal_id, {})
            # In place, as the sweep does (a copy per decision would cost a sixth of the replay).
            decision = decide(lead, rules, now, rr=rr, pending=pending, copy=False)
        except Exception:  # the sweep audits a broken decision and retries it in 5 minutes
            # (the worker retries from the stored lead; here the lead keeps what the failed
            # decision changed: such leads are counted in `errors`)
            self.out.errors += 1
            lead.next_due_at = now + RETRY_BROKEN
            decision = Decision(lead, None, audit=[("error", {"retry_in": str(RETRY_BROKEN)})])
        new = decision.lead
        self.leads[(new.portal_id, new.object_id)] = new
        for team, picked in decision.assigned:
            del team
            self.rr.setdefault(new.portal_id, {})[picked] = now
        if decision.withdrawn:
            by_id = {r.id: r for r in self.pending.get(new.id or 0, [])}
            for row_id, why in decision.withdrawn.items():
                row = by_id.get(row_id)
                if row is not None and row.status == "pending":
                    self._cancel(row, now, f"withdrawn: {why}"[:2000])
        rows = [self._row(new, r, now) for r in decision.rows]
        self._audit(new, now, decision.audit)
        self.observer.changed(new, now, "decide", decision.audit, [r for r in rows if r], owner)
        self._schedule(new)

    # --- the outbox ------------------------------------------------------------------------------

    def _row(self, lead: Lead, r: OutboxRow, now: datetime) -> ReplayedRow | None:
        """Insert like the worker: ON CONFLICT (idempotency key) DO NOTHING."""
        key = r.key[:255]
        if key in self.keys:
            return None
        self.keys.add(key)
        assert lead.id is not None
        recorded = self.h.delivered.get(key)
        if recorded is not None and recorded[0] == now:  # the same decision the worker made
            sent = recorded[1]
        else:
            sent = self.ticks.after(r.deliver_at)
        row = ReplayedRow(
            self.next_id,
            lead.id,
            lead.portal_id,
            lead.object_id,
            key,
            r.channel,
            r.kind,
            r.step,
            r.recipient,
            r.payload,
            now,
            r.due_at,
            r.deliver_at,
            sent,
        )
        self.next_id += 1
        self.pending.setdefault(lead.id, []).append(row)
        if self.keep:
            self.out.rows.append(row)
        return row

    def _undelivered(self, lead: Lead, now: datetime) -> list[ReplayedRow]:
        """The lead's rows still pending at `now` (a row sent at `now` is delivered after the
        sweep of that instant, as the worker's deliver job runs after it)."""
        rows = self.pending.get(lead.id or 0)
        if not rows:
            return []
        live = [r for r in rows if r.status == "pending" and r.sent_at >= now]
        self.pending[lead.id or 0] = live
        return live

    def _cancel(self, row: ReplayedRow, at: datetime, error: str | None) -> None:
        row.status, row.error = "cancelled", error
        self.observer.cancelled(row, at)

    def _audit(self, lead: Lead, at: datetime, entries: Entries) -> None:
        if self.keep and entries:
            assert lead.id is not None
            self.out.audit += [(lead.id, at, kind, detail) for kind, detail in entries]


def _owner_of(recipient: str | None) -> str | None:
    role, _, who = (recipient or "").partition(":")
    return who if role == "owner" else None


def replay(
    history: History,
    loaded: LoadedRules,
    *,
    until: datetime,
    slack: timedelta = timedelta(seconds=5),
    observer: Observer | None = None,
    keep: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Outcome:
    """Replay `history` under `loaded` up to `until` (see the module doc)."""
    return Replay(
        history, loaded, slack=slack, observer=observer, keep=keep, progress=progress
    ).run(until)
