"""Digest rows (kinds "scorecard" and "marketing") -> Slack, each recipient exactly once.

The same guarantees as nudges (see deliverer.py): before posting to a recipient, the row's
result records `posting` for it, and the message carries a hash of the row's key and the
recipient in its metadata; an attempt that finds `posting` set searches the conversation
before posting again. The scorecard's chart (a PNG, sla_bot.digests.chart) is uploaded with
`files_upload_v2` into the message's thread; `uploading` is recorded first, and a retry looks
for the file (by its name, which carries the same hash) in the thread before uploading again.
Progress is kept per recipient, so one manager's DM failing never re-sends another's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from http.client import HTTPException
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from sqlalchemy.engine import Engine

from integrations.slack import marks, threads
from integrations.slack.deliverer import EVENT_TYPE, correlation
from integrations.slack.digest_messages import render, title
from integrations.slack.errors import classify
from integrations.slack.ops import OpsReporter
from integrations.slack.pacing import ChannelPacer
from integrations.slack.users import Directory
from sla_bot.clock import Clock
from sla_bot.outbox import DeliveryError, OutboxItem, record_progress

log = logging.getLogger(__name__)
SLACK_FAILURES = (SlackApiError, SlackRequestError, OSError, HTTPException)


def recipient_key(r: Mapping[str, Any]) -> str:
    return str(r.get("slack") or r.get("email") or r.get("owner_id") or r.get("name"))


class DigestSender:
    def __init__(
        self,
        client: WebClient,
        engine: Engine,
        *,
        clock: Clock,
        directory: Directory,
        pacer: ChannelPacer,
        ops: OpsReporter,
    ) -> None:
        self.client, self.engine, self.clock = client, engine, clock
        self.directory, self.pacer, self.ops = directory, pacer, ops

    def deliver(self, item: OutboxItem) -> dict[str, Any]:
        progress: dict[str, Any] = {"to": dict((item.result or {}).get("to") or {})}
        recipients = item.payload.get("recipients") or []
        if not recipients:
            raise DeliveryError("a digest without recipients", permanent=True)
        for r in recipients:
            key = recipient_key(r)
            state = dict(progress["to"].get(key) or {})
            if state.get("done"):
                continue
            try:
                state = self._one(item, key, r, state, progress)
            except DeliveryError as exc:
                if not exc.permanent:
                    raise DeliveryError(str(exc), permanent=False, result=progress) from exc
                state = {"skipped": str(exc), "done": True}
                self.ops.note(f"digest:{key}:{exc}", f"{title(item.payload)} to {key}: {exc}")
            progress["to"][key] = state
            record_progress(self.engine, item, progress)
        if all(s.get("skipped") for s in progress["to"].values()):
            raise DeliveryError("no recipient could be reached", permanent=True, result=progress)
        return progress

    def _save(self, item: OutboxItem, progress: dict[str, Any], key: str, state: Any) -> None:
        progress["to"][key] = state
        record_progress(self.engine, item, progress)

    def _one(
        self,
        item: OutboxItem,
        key: str,
        r: Mapping[str, Any],
        state: dict[str, Any],
        progress: dict[str, Any],
    ) -> dict[str, Any]:
        now = self.clock.now()
        mark = correlation(f"{item.idempotency_key}|{key}")
        try:
            if not state.get("ts"):
                state = self._post(item, key, r, state, progress, mark, now)
            if item.kind == "scorecard" and not state.get("file"):
                state = self._chart(item, key, state, progress, mark, now)
        except DeliveryError:
            raise
        except SLACK_FAILURES as exc:
            raise classify(exc, None) from exc
        return {**state, "done": True}

    # --- the message ----------

    def _target(self, r: Mapping[str, Any], now: datetime) -> str:
        if r.get("role") == "channel":
            return str(r["slack"])
        user = self.directory.user_for(r, now=now)
        if not user:
            who = r.get("name") or r.get("email")
            raise DeliveryError(
                f"{who} ({r.get('email') or 'no e-mail'}) is not mapped to a Slack user: add "
                "`slack: U…` to the manager in the rules, or check the e-mail",
                permanent=True,
            )
        return self.directory.dm(user)

    def _post(
        self,
        item: OutboxItem,
        key: str,
        r: Mapping[str, Any],
        state: dict[str, Any],
        progress: dict[str, Any],
        mark: str,
        now: datetime,
    ) -> dict[str, Any]:
        if state.get("posting") is not None:  # an earlier attempt may have posted it
            found = self._search(state, mark, thread=None)
            if found:
                return {**state, "ts": found}
        target = self._target(r, now)
        state = {"posting": now.timestamp(), "target": target}
        state["channel"] = threads.known_channel(target)
        self._save(item, progress, key, state)
        text, blocks = render(item.payload)
        self.pacer.wait(state["channel"] or target)
        item.fence()  # the pacing wait may have outlived the lease: post only if it holds
        try:
            response = self.client.chat_postMessage(
                channel=target,
                text=text,
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
                metadata={
                    "event_type": EVENT_TYPE,
                    "event_payload": {"key": mark, "lead_id": 0, "kind": item.kind},
                },
            )
        except SLACK_FAILURES as exc:  # `posting` stays recorded: the next attempt searches
            raise classify(exc, None) from exc
        channel = str(response["channel"])
        threads.learn_channel(target, channel)
        state = {**state, "channel": channel, "ts": str(response["ts"])}
        self._save(item, progress, key, state)
        return state

    def _search(self, state: Mapping[str, Any], mark: str, *, thread: str | None) -> str | None:
        """The ts of our message (or of our file's message, in a thread) if already there."""
        since = state.get("uploading") if thread else state.get("posting")
        return marks.find_marked(
            self.client,
            channel=state.get("channel"),
            since=float(since or 0),
            match=marks.file_named(_file_name(mark)) if thread else marks.keyed(mark),
            thread_ts=thread,
        )

    # --- the chart ----------

    def _chart(
        self,
        item: OutboxItem,
        key: str,
        state: dict[str, Any],
        progress: dict[str, Any],
        mark: str,
        now: datetime,
    ) -> dict[str, Any]:
        from sla_bot.digests.chart import scorecard_png

        if state.get("uploading") is not None:
            found = self._search(state, mark, thread=state["ts"])
            if found:
                return {**state, "file": found}
        state = {**state, "uploading": now.timestamp()}
        self._save(item, progress, key, state)
        png = scorecard_png(item.payload)
        self.pacer.wait(state["channel"])
        item.fence()
        response = self.client.files_upload_v2(
            channel=state["channel"],
            thread_ts=state["ts"],
            file=png,
            filename=_file_name(mark),
            title=title(item.payload),
            alt_txt=f"{title(item.payload)}: first touches met and breached per rep",
        )
        state = {**state, "file": str(response["file"]["id"])}
        self._save(item, progress, key, state)
        return state


def _file_name(mark: str) -> str:
    return f"scorecard-{mark[:16]}.png"
