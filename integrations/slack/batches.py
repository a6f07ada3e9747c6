"""Batched escalations: one Slack message per manager or channel and window, edited in place.

A lead's outbox row whose payload carries `batch` (noise control is on for its team or policy)
does not post a message of its own: it *joins* the open batch of its recipient, or opens one,
in one transaction (its outbox id is unique among the members, so a retried row joins once). A
new batch enqueues its own outbox row ("batch:<id>", kind `slack.batch`), due at once, or when
the hourly cap allows (the leads that arrive meanwhile fold into it). That row posts the
message exactly once, like any other (progress recorded first, metadata key searched after an
ambiguous failure); leads that join a posted batch edit it in place (chat.update). Each edit
renders every member from the database, so a lost edit is repaired by the next one, and the
batch row edits once more after recording its ts: a lead that joined while it was posting is
never left out.
"""

from __future__ import annotations

import json
import logging
import threading
import zlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from http.client import HTTPException
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Connection, Row, func, insert, select, text, update
from sqlalchemy.engine import Engine

from integrations.slack import threads
from integrations.slack.batch_messages import Member, render_batch
from integrations.slack.errors import ambiguous, classify
from integrations.slack.pacing import ChannelPacer
from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import slack_batch_items, slack_batches
from sla_bot.outbox import enqueue, record_progress

log = logging.getLogger(__name__)
KIND = "slack.batch"
HOUR = timedelta(hours=1)
UPDATE_GIVE_UP = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
Search = Callable[[Mapping[str, Any], str], "str | None"]


def is_batched(kind: str, payload: Mapping[str, Any]) -> bool:
    """Does this outbox row go through a batch (the batch's own row, or a lead joining one)?"""
    return kind == KIND or bool(payload.get("batch"))


def post_at(recent: list[datetime], now: datetime, cap: int | None) -> datetime:
    """When a new batch may go out: now, unless `cap` messages went out in the last hour;
    then when the oldest of the last `cap` is an hour old. `recent`: post times, oldest first."""
    if not cap or len(recent) < cap:
        return now
    return max(now, recent[len(recent) - cap] + HOUR)


class Batches:
    def __init__(
        self,
        client: WebClient,
        engine: Engine,
        pacer: ChannelPacer,
        search: Search,
        correlate: Callable[[str], str],
        event_type: str,
    ) -> None:
        self.client, self.engine, self.pacer = client, engine, pacer
        self.search, self.correlate, self.event_type = search, correlate, event_type
        self._guard = threading.Lock()
        self._dirty: set[int] = set()
        self._editing: dict[int, threading.Lock] = {}

    # --- a lead joins ----------

    def join(self, item: Any, target: str, now: datetime) -> dict[str, Any]:
        """Add the lead's row to its recipient's open batch (opening one if needed)."""
        spec = item.payload["batch"]
        with write_transaction(self.engine, background=True) as conn:
            _lock(conn, spec["key"])
            batch_id = conn.execute(
                select(slack_batch_items.c.batch_id).where(slack_batch_items.c.outbox_id == item.id)
            ).scalar()
            if batch_id is None:
                batch_id = self._add(conn, item, spec, target, now)
            batch = conn.execute(select(slack_batches).where(slack_batches.c.id == batch_id)).one()
        if batch.ts:
            self.refresh(batch_id)
        return {"batch": batch_id, "target": target, "folded": batch.post_at > now}

    def _add(
        self, conn: Connection, item: Any, spec: Mapping[str, Any], target: str, now: datetime
    ) -> int:
        found = conn.execute(
            select(slack_batches.c.id, slack_batches.c.post_at)
            .where(slack_batches.c.batch_key == spec["key"], slack_batches.c.closes_at > now)
            .order_by(slack_batches.c.id.desc())
            .limit(1)
        ).first()
        if found is None:
            batch_id, when = self._open(conn, item, spec, target, now)
        else:
            batch_id, when = found.id, found.post_at
        conn.execute(
            insert(slack_batch_items).values(
                batch_id=batch_id,
                outbox_id=item.id,
                lead_id=item.lead_id,
                payload=json.dumps(item.payload, default=str, sort_keys=True),
                folded=int(when > now),
                added_at=now,
            )
        )
        return int(batch_id)

    def _open(
        self, conn: Connection, item: Any, spec: Mapping[str, Any], target: str, now: datetime
    ) -> tuple[int, datetime]:
        cap = spec.get("max_per_hour")
        recent = list(
            conn.execute(
                select(slack_batches.c.post_at)
                .where(
                    slack_batches.c.batch_key == spec["key"],
                    slack_batches.c.post_at > now - HOUR,
                )
                .order_by(slack_batches.c.post_at)
            ).scalars()
        )
        when = post_at(recent, now, cap)
        closes = max(now + timedelta(seconds=int(spec.get("window") or 0)), when)
        batch_id = conn.execute(
            insert(slack_batches)
            .values(
                portal_id=item.portal_id,
                batch_key=spec["key"],
                target=target,
                opened_at=now,
                closes_at=closes,
                post_at=when,
                max_per_hour=cap,
                shown=0,
                updated_at=now,
            )
            .returning(slack_batches.c.id)
        ).scalar_one()
        recipient = item.payload.get("recipient") or {}
        enqueue(
            conn,
            key=f"batch:{batch_id}",
            channel="slack",
            kind=KIND,
            payload={"batch_id": batch_id, "recipient": recipient, "batch": dict(spec)},
            portal_id=item.portal_id,
            now=now,
            deliver_at=when,
            recipient=f"{recipient.get('role')}:{spec['key'].rsplit(':', 1)[-1]}",
        )
        return int(batch_id), when

    # --- the batch's own message ----------

    def post(self, item: Any, target: str, now: datetime) -> dict[str, Any]:
        """Post the batch's message once, then bring it up to date."""
        batch_id = int(item.payload["batch_id"])
        batch = _batch(self.engine, batch_id)
        progress: dict[str, Any] = dict(item.result or {})
        ts, channel = batch.ts, batch.channel
        if not ts and progress.get("ts"):  # posted and recorded on the row, not the batch yet
            ts, channel = str(progress["ts"]), progress.get("channel")
            _record(self.engine, batch_id, target, channel, ts, now)
        if not ts:
            key = self._key(item)
            found = self.search(progress, key) if progress.get("posting") is not None else None
            if found:
                ts, channel = found, progress.get("channel")
            else:
                ts, channel = self._send(item, target, batch_id, now)
            record_progress(self.engine, item, {"target": target, "channel": channel, "ts": ts})
            _record(self.engine, batch_id, target, channel, ts, now)
        self.refresh(batch_id)
        return {"target": target, "channel": channel, "ts": ts, "batch": batch_id}

    def _key(self, item: Any) -> str:
        return self.correlate(item.idempotency_key)

    def _send(self, item: Any, target: str, batch_id: int, now: datetime) -> tuple[str, str]:
        members, cap = _members(self.engine, batch_id)
        progress = {"posting": now.timestamp(), "target": target}
        progress["channel"] = threads.known_channel(target)
        record_progress(self.engine, item, progress)
        fallback, blocks = render_batch(members, now=now, max_per_hour=cap)
        key = self._key(item)
        self.pacer.wait(progress["channel"] or target)
        item.fence()  # the pacing wait may have outlived the lease: post only if it holds
        try:
            response = self.client.chat_postMessage(
                channel=target,
                text=fallback,
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
                metadata={
                    "event_type": self.event_type,
                    "event_payload": {"key": key, "lead_id": 0, "kind": KIND},
                },
            )
        except (SlackApiError, OSError, HTTPException) as exc:
            if ambiguous(exc):
                try:
                    found = self.search(progress, key)
                except (SlackApiError, OSError, HTTPException):
                    found = None  # the next attempt searches again: `posting` is kept
                if found:
                    return found, str(progress["channel"])
            raise classify(exc, progress) from exc  # keeps `posting`: the next try searches
        threads.learn_channel(target, response["channel"])
        self._shown(batch_id, len(members))
        return str(response["ts"]), str(response["channel"])

    # --- edits in place ----------

    def refresh(self, batch_id: int) -> None:
        """Edit a posted batch so it lists every member. Coalesced in this process: while one
        thread edits a batch, others that add a lead only mark it dirty and return; the editing
        thread edits again until nothing is left (30 leads arriving together cost a few edits,
        not 30). A failed edit raises, so the editing thread's own row is retried, and its
        retry renders every member from the database."""
        with self._guard:
            self._dirty.add(batch_id)
            lock = self._editing.setdefault(batch_id, threading.Lock())
        while lock.acquire(blocking=False):
            try:
                while True:
                    with self._guard:
                        if batch_id not in self._dirty:
                            break
                        self._dirty.discard(batch_id)
                    self._edit(batch_id)
            finally:
                lock.release()
            with self._guard:
                if batch_id not in self._dirty:  # nobody came in after the last check
                    if len(self._editing) > 1000:
                        self._editing.pop(next(iter(self._editing)))
                    return

    def _edit(self, batch_id: int) -> None:
        """One chat.update listing every member (none if the message already lists them all)."""
        batch = _batch(self.engine, batch_id)
        if not batch.ts or batch.shown == _count(self.engine, batch_id):
            return
        self.pacer.wait(batch.channel)
        members, cap = _members(self.engine, batch_id)  # after the wait: whoever joined since
        fallback, blocks = render_batch(members, now=batch.updated_at, max_per_hour=cap)
        try:
            self.client.chat_update(
                channel=batch.channel, ts=batch.ts, text=fallback, blocks=blocks
            )
        except SlackApiError as exc:
            if exc.response.get("error") not in UPDATE_GIVE_UP:
                raise
            log.warning("cannot edit batch %s: %s", batch_id, exc.response.get("error"))
        self._shown(batch_id, len(members))

    def _shown(self, batch_id: int, count: int) -> None:
        with write_transaction(self.engine, background=True) as conn:
            conn.execute(
                update(slack_batches).where(slack_batches.c.id == batch_id).values(shown=count)
            )


def _lock(conn: Connection, key: str) -> None:
    """One replica at a time opens or joins a recipient's batch (PostgreSQL; SQLite has one
    writer anyway)."""
    if conn.dialect.name == "postgresql":
        ns = zlib.crc32(b"slack_batch") & 0x7FFFFFFF
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:ns, :key)"),
            {"ns": ns, "key": zlib.crc32(key.encode()) & 0x7FFFFFFF},
        )


def _record(
    engine: Engine, batch_id: int, target: str, channel: str | None, ts: str, now: datetime
) -> None:
    with write_transaction(engine, background=True) as conn:
        conn.execute(
            update(slack_batches)
            .where(slack_batches.c.id == batch_id)
            .values(channel=channel, ts=ts, target=target, updated_at=now)
        )


def _batch(engine: Engine, batch_id: int) -> Row[Any]:
    with engine.connect() as conn:
        return conn.execute(select(slack_batches).where(slack_batches.c.id == batch_id)).one()


def _count(engine: Engine, batch_id: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(slack_batch_items.c.batch_id == batch_id)
            ).scalar_one()
        )


def _members(engine: Engine, batch_id: int) -> tuple[list[Member], int | None]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(slack_batch_items.c.payload, slack_batch_items.c.folded)
            .where(slack_batch_items.c.batch_id == batch_id)
            .order_by(slack_batch_items.c.id)
        ).all()
        cap = conn.execute(
            select(slack_batches.c.max_per_hour).where(slack_batches.c.id == batch_id)
        ).scalar()
    return [Member(json.loads(r.payload), bool(r.folded)) for r in rows], cap
