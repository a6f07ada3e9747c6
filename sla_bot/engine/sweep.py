"""The scheduler pass: claim leads whose `next_due_at` has come, decide, write the outbox.

One transaction per batch: the claimed rows (FOR UPDATE SKIP LOCKED on PostgreSQL, so two
workers take disjoint batches; SQLite has one writer), the outbox rows, the audit rows, the new
`next_due_at` and the round-robin times commit together or not at all. A worker killed mid-batch
leaves the batch due, and the next pass decides it again with the same idempotency keys.
A pass with nothing due is one indexed range probe on `ix_leads_due`, no scan.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from sla_bot import outbox
from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import leads
from sla_bot.db.schema import outbox as outbox_table
from sla_bot.engine import audit, outcome_store
from sla_bot.engine import leads as repo
from sla_bot.engine.decide import BACKFILL_GRACE, decide
from sla_bot.engine.effects import Decision, PendingRow
from sla_bot.engine.leads import Lead
from sla_bot.engine.outcomes import Attribution, outcome_of
from sla_bot.engine.pinning import pinned
from sla_bot.engine.reassign import last_assignments, remember_assignment
from sla_bot.rules import LoadedRules, RuleSet

log = logging.getLogger(__name__)
RETRY_BROKEN = timedelta(minutes=5)


@dataclass
class SweepResult:
    leads: int = 0
    rows: int = 0
    failed: int = 0


def sweep_once(
    engine: Engine,
    loaded: LoadedRules,
    *,
    now: datetime,
    limit: int = 500,
    attribution: Attribution = Attribution(),  # noqa: B008 - frozen, shared
) -> SweepResult:
    """Decide up to `limit` due leads in one transaction, with their outcome facts."""
    result = SweepResult()
    with write_transaction(engine, background=True) as conn:
        query = (
            select(*repo.SWEEP_COLUMNS)
            .where(leads.c.next_due_at <= now)
            .order_by(leads.c.next_due_at, leads.c.id)  # ties by id: round robin is replayable
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        claimed = conn.execute(query).all()
        if not claimed:
            return result
        rr = last_assignments(conn, {row.portal_id for row in claimed})
        pending = outbox.pending_messages(conn, (row.id for row in claimed))
        before = outcome_store.previous(conn, (row.id for row in claimed))
        writing = outcome_store.writeback_portals(conn, {row.portal_id for row in claimed})
        decisions = []
        for row in claimed:
            result.leads += 1
            lead = repo.from_row(row)
            try:
                rules = pinned(
                    loaded, lead.policy_hash, lambda lid=lead.id: repo.snapshot(conn, lid or 0)
                )
                decision = decide(
                    lead,
                    rules,
                    now,
                    rr=rr.get(lead.portal_id, {}),
                    pending=[_pending(r) for r in pending.get(row.id, [])],
                    copy=False,
                )
                decision.outcome = _outcome(
                    decision, rules, now, attribution, before, lead.portal_id in writing
                )
            except Exception:  # one broken lead must not stall the others
                log.exception("lead %s: decision failed; retrying in %s", lead.id, RETRY_BROKEN)
                result.failed += 1
                lead = repo.from_row(row)  # decide worked on it in place: start clean
                lead.next_due_at = now + RETRY_BROKEN
                decision = Decision(lead, None, audit=[("error", {"retry_in": str(RETRY_BROKEN)})])
            decisions.append(decision)
            for team, owner in decision.assigned:
                rr.setdefault(lead.portal_id, {})[owner] = now
                remember_assignment(conn, lead.portal_id, team, owner, now)
        result.rows = write_decisions(conn, decisions, now=now)
    return result


def _outcome(
    decision: Decision,
    rules: RuleSet,
    now: datetime,
    attribution: Attribution,
    before: dict[int, Any],
    write_back: bool,
) -> outcome_store.OutcomeChange | None:
    """The lead's outcome facts after this decision; a fault here never stops the decision."""
    lead: Lead = decision.lead
    if decision.timeline is None or lead.id is None:
        return None
    previous = before.get(lead.id)
    try:
        new = outcome_of(
            lead, decision.timeline, rules, now, attribution=attribution, previous=previous
        )
    except Exception:
        log.exception("lead %s: outcome facts failed; the decision stands", lead.id)
        return None
    if new is None:
        return None
    seen = lead.state.first_seen_at
    live = seen - BACKFILL_GRACE if seen is not None else None
    return outcome_store.OutcomeChange(previous, new, write_back, live)


def sweep_due(
    engine: Engine,
    loaded: LoadedRules,
    *,
    now: datetime,
    limit: int = 500,
    attribution: Attribution = Attribution(),  # noqa: B008 - frozen, shared
    stopping: Callable[[], bool] = lambda: False,
) -> int:
    """Sweep until nothing is due (bounded), so a burst drains within one tick; between passes,
    return early once `stopping()` (the worker is shutting down: what is left stays due)."""
    total = 0
    for _ in range(100):
        got = sweep_once(engine, loaded, now=now, limit=limit, attribution=attribution)
        total += got.leads
        if got.leads < limit or stopping():
            break
    return total


def _pending(row: Any) -> PendingRow:
    role, _, who = (row.recipient or "").partition(":")
    return PendingRow(row.id, row.kind, row.step, row.recipient, who if role == "owner" else None)


def write_decisions(conn: Connection, decisions: list[Decision], *, now: datetime) -> int:
    """Persist decisions of leads locked by the caller's transaction, in a few bulk statements.

    The rows are those `outbox.enqueue` writes (same columns, same ON CONFLICT DO NOTHING on
    the idempotency key), but sent as one executemany: per-row statements cost more than the
    decisions themselves. Returns the number of outbox rows offered.
    """
    repo.save_many(conn, [d.lead for d in decisions], now=now)
    changes = [(d.lead.id, d.outcome, d.audit) for d in decisions if d.outcome is not None]
    writes = outcome_store.record(conn, changes, now=now)  # facts, counters, write-back rows
    rows, entries = [], []
    for d in decisions:
        lead = d.lead
        assert lead.id is not None
        if d.withdrawn:
            outbox.withdraw(conn, d.withdrawn)
        for row in [*d.rows, *writes.get(lead.id, ())]:
            rows.append(
                {
                    "lead_id": lead.id,
                    "portal_id": lead.portal_id,
                    "object_id": lead.object_id,
                    "idempotency_key": row.key[:255],
                    "channel": row.channel,
                    "kind": row.kind,
                    "step": row.step,
                    "recipient": row.recipient,
                    "payload": json.dumps(row.payload, default=str, sort_keys=True),
                    "status": "pending",
                    "attempts": 0,
                    "decided_at": now,
                    "due_at": row.due_at,
                    "next_attempt_at": row.deliver_at,
                }
            )
        entries += [(lead.id, kind, detail) for kind, detail in d.audit]
    if rows:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(outbox_table).on_conflict_do_nothing(), rows)
    audit.record_many(conn, entries, at=now)
    return len(rows)
