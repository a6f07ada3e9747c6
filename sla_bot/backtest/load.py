"""Read the recorded history from the database, read-only (the only I/O of a backtest).

SQLite is opened with `mode=ro` (the file cannot be written through this connection) and
PostgreSQL sessions are `READ ONLY`, so a backtest cannot change what it reads.

What is read:
- `webhook_events` applied by the worker (not the quarantined ones), with their raw batch body
  where the engine needs it (merges, syncs, workflow webhooks), grouped as the apply job
  applied them: per contact and `processed_at`;
- `lead_events` rows that are inputs rather than decisions: contacts read from HubSpot
  (`fetched`, and `closed` not_found) and Slack buttons (`ack`, `snooze`, `touch` logged by
  someone, `reassigned` manual);
- the instants the sweep ran at (its own audit rows), so decisions are replayed at the same
  `now`; when the deliverer sent each message (`outbox.sent_at`); round-robin times before the
  replay starts.

A lead is replayed only if its history is complete: its first applied events are still stored
(retention may have pruned them; `sla-bot db prune` keeps 35 days by default).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, create_engine, event, select
from sqlalchemy.engine import Engine, make_url

from sla_bot.backtest.history import Button, EventBatch, Fetched, History, Input
from sla_bot.db.schema import lead_events, leads, outbox, sync_state, webhook_batches
from sla_bot.db.schema import webhook_events as events
from sla_bot.engine.apply import event_order
from sla_bot.engine.events import Event
from sla_bot.engine.state import LeadState

RAW_TYPES = ("contact.merge", "contact.sync", "workflow.contact")
BUTTONS = ("ack", "snooze", "touch", "reassigned")
# Audit kinds only the sweep writes: their instants are the sweep's ticks.
SWEEP_KINDS = (
    "step.fired",
    "step.skipped",
    "step.silenced",
    "message.superseded",
    "message.withdrawn",
    "reassign.skipped",
    "ack.expired",
    "task.planned",
    "reopened",
    "error",
)
DECISION_CLOSES = ("recycled", "disqualified", "stopped")
CHUNK = 500


def open_readonly(url: str) -> Engine:
    """An engine that cannot write: SQLite `mode=ro`, PostgreSQL `READ ONLY` sessions."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if not path or path == ":memory:":
            raise ValueError("a backtest reads a database file, not an in-memory database")
        return create_engine(
            f"sqlite:///file:{path}?mode=ro&uri=true", connect_args={"check_same_thread": False}
        )
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        dbapi_conn.commit()

    return engine


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    portal_id: int | None = None


def _chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def load_history(engine: Engine, period: Period) -> History:
    """The recorded history of every lead the period can see (see the module doc)."""
    with engine.connect() as conn:
        return _Loader(conn, period).load()


class _Loader:
    def __init__(self, conn: Any, period: Period) -> None:
        self.conn, self.p = conn, period
        self.unknown: list[str] = []
        self.skipped: dict[str, int] = defaultdict(int)

    def _portal(self, column: Any) -> Any:
        return column == self.p.portal_id if self.p.portal_id is not None else True

    def load(self) -> History:
        rows = self.conn.execute(
            select(
                events.c.id,
                events.c.portal_id,
                events.c.object_id,
                events.c.subscription_type,
                events.c.occurred_at_ms,
                events.c.property_name,
                events.c.property_value,
                events.c.batch_id,
                events.c.batch_index,
                events.c.processed_at,
                events.c.outcome,
            ).where(
                events.c.processed_at.is_not(None),
                events.c.processed_at < self.p.end,
                self._portal(events.c.portal_id),
            )
        ).all()
        rows = [r for r in rows if not (r.outcome or "").startswith("error:")]
        known = self._leads({(r.portal_id, r.object_id) for r in rows})
        first: dict[tuple[int, int], datetime] = {}
        for r in rows:
            k = (r.portal_id, r.object_id)
            first[k] = min(first.get(k, r.processed_at), r.processed_at)
        included = {}
        for k, (lead_id, seen, _) in known.items():
            if seen is None or first.get(k) != seen:
                self.skipped["history starts before the stored events (retention)"] += 1
            else:
                included[k] = lead_id
        inputs: list[Input] = list(
            self._batches([r for r in rows if (r.portal_id, r.object_id) in included])
        )
        by_id = {lead_id: k for k, lead_id in included.items()}
        inputs += self._audit_inputs(by_id, {k: known[k][2] for k in included})
        history = History(
            inputs,
            lead_ids=included,
            ticks=self._ticks(min(first.values(), default=self.p.end)),
            delivered=self._delivered(list(by_id)),
            fetching=self._fetching(),
            unknown=self.unknown,
            not_replayed=dict(self.skipped),
        )
        if history.inputs:
            history.round_robin = self._round_robin(history.inputs[0].at)
        return history

    def _leads(self, keys: set[tuple[int, int]]) -> dict[tuple[int, int], tuple[int, Any, Any]]:
        """(portal, object) -> (lead id, first seen, final properties) of stored leads."""
        out = {}
        query = select(
            leads.c.id, leads.c.portal_id, leads.c.object_id, leads.c.state, leads.c.properties
        ).where(self._portal(leads.c.portal_id))
        for r in self.conn.execute(query):
            k = (r.portal_id, r.object_id)
            if k in keys:
                seen = LeadState.model_validate_json(r.state or "{}").first_seen_at
                out[k] = (r.id, seen, r.properties)
        return out

    def _batches(self, rows: list[Any]) -> Iterator[EventBatch]:
        raw_ids = sorted({r.batch_id for r in rows if r.subscription_type in RAW_TYPES})
        bodies: dict[int, list[Any]] = {}
        for chunk in _chunks(raw_ids):
            q = select(webhook_batches.c.id, webhook_batches.c.body).where(
                webhook_batches.c.id.in_(chunk)
            )
            for b in self.conn.execute(q):
                data = json.loads(b.body)
                bodies[b.id] = data if isinstance(data, list) else [data]
        groups: dict[tuple[datetime, int, int], list[Any]] = defaultdict(list)
        for r in rows:
            groups[(r.processed_at, r.portal_id, r.object_id)].append(r)
        missing = 0
        for (at, portal, obj), group in groups.items():
            evs = []
            for r in sorted(group, key=event_order):
                raw: dict[str, Any] = {}
                if r.subscription_type in RAW_TYPES:
                    items = bodies.get(r.batch_id)
                    if items is None:
                        missing += 1
                    elif 0 <= r.batch_index < len(items) and isinstance(items[r.batch_index], dict):
                        raw = items[r.batch_index]
                evs.append(
                    Event(
                        portal,
                        obj,
                        r.subscription_type,
                        r.occurred_at_ms,
                        r.property_name,
                        r.property_value,
                        raw,
                    )
                )
            yield EventBatch(at, portal, obj, tuple(evs))
        if missing:
            self.unknown.append(
                f"{missing} merge/sync events whose raw webhook body was pruned: replayed "
                "without their contents"
            )

    def _audit_inputs(
        self, by_id: dict[int, tuple[int, int]], final: dict[Any, Any]
    ) -> list[Input]:
        out: list[Input] = []
        approximated = 0
        kinds = (*BUTTONS, "fetched", "closed")
        for chunk in _chunks(sorted(by_id)):
            q = (
                select(
                    lead_events.c.lead_id,
                    lead_events.c.at,
                    lead_events.c.kind,
                    lead_events.c.detail,
                )
                .where(
                    lead_events.c.lead_id.in_(chunk),
                    lead_events.c.kind.in_(kinds),
                    lead_events.c.at < self.p.end,
                )
                .order_by(lead_events.c.id)
            )
            for r in self.conn.execute(q):
                portal, obj = by_id[r.lead_id]
                d = json.loads(r.detail or "{}")
                if r.kind == "fetched":
                    values = d.get("values")
                    if values is None:  # recorded before fetched values were kept
                        approximated += 1
                        values = json.loads(final.get((portal, obj)) or "{}")
                    out.append(Fetched(r.at, portal, obj, values, d.get("owner_name")))
                elif r.kind == "closed":
                    if d.get("reason") == "not_found":
                        out.append(Fetched(r.at, portal, obj, None))
                elif r.kind == "touch":
                    if d.get("by"):
                        out.append(Button(r.at, portal, obj, "touch", d))
                elif r.kind == "reassigned":
                    if d.get("manual"):
                        out.append(Button(r.at, portal, obj, "reassign", d))
                else:
                    out.append(Button(r.at, portal, obj, r.kind, d))
        if approximated:
            self.unknown.append(
                f"{approximated} contact reads recorded before sla-bot kept the values read: "
                "replayed with the lead's latest properties"
            )
        return out

    def _ticks(self, since: datetime) -> list[datetime]:
        window = and_(lead_events.c.at >= since, lead_events.c.at < self.p.end)
        ticks = set(
            self.conn.execute(
                select(lead_events.c.at)
                .where(window, lead_events.c.kind.in_(SWEEP_KINDS))
                .distinct()
            ).scalars()
        )
        for r in self.conn.execute(
            select(lead_events.c.at, lead_events.c.kind, lead_events.c.detail).where(
                window, lead_events.c.kind.in_(("closed", "reassigned"))
            )
        ):
            d = json.loads(r.detail or "{}")
            if (r.kind == "closed" and d.get("reason") in DECISION_CLOSES) or (
                r.kind == "reassigned" and not d.get("manual")
            ):
                ticks.add(r.at)
        return sorted(ticks)

    def _delivered(self, lead_ids: list[int]) -> dict[str, tuple[datetime, datetime]]:
        out: dict[str, tuple[datetime, datetime]] = {}
        failed = 0
        for chunk in _chunks(sorted(lead_ids)):
            q = select(
                outbox.c.idempotency_key, outbox.c.decided_at, outbox.c.sent_at, outbox.c.status
            ).where(outbox.c.lead_id.in_(chunk))
            for r in self.conn.execute(q):
                if r.sent_at is not None:
                    out[r.idempotency_key] = (r.decided_at, r.sent_at)
                failed += r.status == "failed"
        if failed:
            self.unknown.append(
                f"{failed} messages failed delivery: when they stopped waiting is unknown "
                "(taken as their delivery time)"
            )
        return out

    def _fetching(self) -> bool:
        q = select(lead_events.c.id).where(lead_events.c.kind == "fetched").limit(1)
        return self.conn.execute(q).first() is not None

    def _round_robin(self, start: datetime) -> dict[int, dict[str, datetime | None]]:
        """portal -> owner -> last round-robin assignment before `start` (audit, else the
        stored times if they are older than `start`)."""
        out: dict[int, dict[str, datetime | None]] = defaultdict(dict)

        def seen(portal: int, owner: str, at: datetime) -> None:
            was = out[portal].get(owner)
            if was is None or at > was:
                out[portal][owner] = at

        q = select(sync_state).where(
            sync_state.c.job.like("rr:%"), self._portal(sync_state.c.portal_id)
        )
        for r in self.conn.execute(q):
            if r.watermark is not None and r.watermark < start:
                seen(r.portal_id, r.job.rsplit(":", 1)[-1], r.watermark)
        q = (
            select(leads.c.portal_id, lead_events.c.at, lead_events.c.detail)
            .join(leads, leads.c.id == lead_events.c.lead_id)
            .where(
                lead_events.c.kind == "reassigned",
                lead_events.c.at < start,
                self._portal(leads.c.portal_id),
            )
        )
        for r in self.conn.execute(q):
            d = json.loads(r.detail or "{}")
            if d.get("to") and (not d.get("manual") or d.get("round_robin")):
                seen(r.portal_id, str(d["to"]), r.at)
        return dict(out)
