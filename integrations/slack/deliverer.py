"""SlackDeliverer: outbox rows (channel "slack") -> Slack messages, each exactly once.

Never twice: before posting, the row's result is set to `posting` (time, target, thread) with
`record_progress`, and the message carries metadata with a hash of the row's idempotency key.
If the post fails ambiguously (5xx, timeout, dropped connection: Slack may have posted it), or a
later attempt finds `posting` set, the conversation (or thread) is searched for that key before
posting again. The `ts` is recorded as soon as it is known, so the follow-up step (editing the
thread's first message) can fail and be retried without posting again.

Fenced: `posting` is recorded only while the row's lease holds, and the lease is checked again
(`item.fence()`) after the channel's pacing wait, right before chat.postMessage; a worker whose
lease was taken over neither posts nor records. Slack has no idempotency key, so the one case
left is a post whose answer is lost *and* whose search cannot see it (no conversation id yet, or
Slack's history not showing it): the row is then posted again. See docs/slack.md.

Threading: the first message about a lead in a conversation is the root (`slack_threads`); later
ones are replies, and the root is edited in place to show the current state. While one message
starts a lead's thread in a conversation, another message about that lead to the same place is
put back for a second (no lock is held across a network call, so a hung post holds up only its
own row).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from http.client import HTTPException
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import update
from sqlalchemy.engine import Engine

from integrations.slack import marks, threads
from integrations.slack.batches import KIND as BATCH_KIND
from integrations.slack.batches import Batches, is_batched
from integrations.slack.client import paced_call
from integrations.slack.digest_messages import KINDS as DIGEST_KINDS
from integrations.slack.errors import (
    ambiguous,
    classify,
    error_code,
    rate_limited,
    retry_after_of,
)
from integrations.slack.messages import plain_text, render, state_after
from integrations.slack.ops import OpsReporter
from integrations.slack.pacing import MAX_WAIT, STALE_SLOT, ChannelPacer, SharedChannelPacer
from integrations.slack.users import Directory
from sla_bot.clock import Clock
from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import slack_threads
from sla_bot.metrics_store import api_error
from sla_bot.outbox import Deferred, DeliveryError, OutboxItem, record_progress

log = logging.getLogger(__name__)
MAX_REFUSALS = 5  # 429s in a row on one message that take a new slot without counting an attempt
EVENT_TYPE = "sla_bot_message"
UPDATE_GIVE_UP = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
BROADCAST_KINDS = frozenset({"first_touch.warning", "first_touch.breach", "ladder", "reassigned"})
ROOT_BUSY_RETRY = 1.0  # seconds: another message is starting this lead's thread here


def correlation(idempotency_key: str) -> str:
    """What goes in message metadata: visible workspace-wide, so a hash, never the key."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


class SlackDeliverer:
    channel = "slack"

    def __init__(
        self,
        client: WebClient,
        engine: Engine,
        *,
        clock: Clock,
        rules: Any = None,
        directory: Directory | None = None,
        pacer: ChannelPacer | SharedChannelPacer | None = None,
        ops: OpsReporter | None = None,
    ) -> None:
        self.client, self.engine, self.clock = client, engine, clock
        self.directory = directory or Directory(client, engine, rules=rules)
        self.pacer = pacer or SharedChannelPacer(engine)
        self.ops = ops or OpsReporter(client, None, clock=clock)
        self._starting: set[tuple[int, str]] = set()  # (lead, target) whose root is being posted
        self._guard = threading.Lock()
        from integrations.slack.digests import DigestSender  # it reuses this module's names

        self.digests = DigestSender(
            client, engine, clock=clock, directory=self.directory, pacer=self.pacer, ops=self.ops
        )

        self.batches = Batches(client, engine, self.pacer, self._search, correlation, EVENT_TYPE)

    def deliver(self, item: OutboxItem) -> dict[str, Any]:
        if item.kind in DIGEST_KINDS:  # weekly scorecards and the marketing digest
            return self.digests.deliver(item)
        if is_batched(item.kind, item.payload):
            return self._batched(item)
        now = self.clock.now()
        progress: dict[str, Any] = dict(item.result or {})
        try:
            if not progress.get("ts"):
                target, note = self._target(item.payload, now)
                progress = self._post(item, target, note, progress, now)
            if progress.get("thread_ts") and not progress.get("root_updated"):
                self._update_root(item, progress, now)
                progress["root_updated"] = True
        except DeliveryError as exc:
            self._report(item, exc)
            raise
        except (SlackApiError, OSError, HTTPException) as exc:
            error = classify(exc, progress)
            self._report(item, error)
            raise error from exc
        return progress

    def _batched(self, item: OutboxItem) -> dict[str, Any]:
        """Noise control: the lead joins its recipient's batch, or the batch's message goes out
        (batches.py). A batch's message is one outbox row, posted under that row's lease; joins
        are serialised by the database and their edits coalesced by `Batches.refresh`."""
        now = self.clock.now()
        try:
            target, _ = self._target(item.payload, now)
            if item.kind != BATCH_KIND:
                return self.batches.join(item, target, now)
            return self.batches.post(item, target, now)
        except DeliveryError as exc:
            self._report(item, exc)
            raise
        except (SlackApiError, OSError, HTTPException) as exc:
            error = classify(exc, item.result)
            self._report(item, error)
            raise error from exc

    # --- who ----------

    def _target(self, payload: Mapping[str, Any], now: datetime) -> tuple[str, str | None]:
        """Where to post, and a note if it is not where it should have gone."""
        recipient = payload.get("recipient") or {}
        slack = str(recipient.get("slack") or "")
        if recipient.get("role") == "channel" or slack[:1] in ("C", "G", "#"):
            if slack:
                return slack, None
            raise DeliveryError("channel recipient without a channel", permanent=True)
        user = self.directory.user_for(recipient, now=now)
        if user:
            return self.directory.dm(user), None
        who = recipient.get("name") or recipient.get("email") or recipient.get("owner_id")
        fallback = threads.team_channel(self.directory.ruleset(), payload)
        problem = (
            f"{who} ({recipient.get('email') or 'no e-mail'}) is not mapped to a Slack user: "
            "add `slack: U…` to the team in the rules, or check the e-mail."
        )
        self.ops.note(f"unmapped:{who}", problem, now=now)
        if fallback is None:
            raise DeliveryError(f"{problem} No team channel to fall back to.", permanent=True)
        return fallback, f"Sent here because {who} could not be found in Slack."

    @contextmanager
    def _starting_thread(self, lead_id: int | None, target: str) -> Iterator[None]:
        """While this row may post a lead's first message in `target`, no other row about the
        lead posts there (it would start a second thread); it is put back, not waited for."""
        if not lead_id:
            yield
            return
        key = (lead_id, target)
        with self._guard:
            if key in self._starting:
                raise DeliveryError(
                    "another message is starting this lead's thread here",
                    permanent=False,
                    retry_after=ROOT_BUSY_RETRY,
                )
            self._starting.add(key)
        try:
            yield
        finally:
            with self._guard:
                self._starting.discard(key)

    # --- post, exactly once ----------

    def _post(
        self,
        item: OutboxItem,
        target: str,
        note: str | None,
        progress: dict[str, Any],
        now: datetime,
    ) -> dict[str, Any]:
        root = threads.find(self.engine, item.lead_id, target) if item.lead_id else None
        if root is not None:
            return self._post_once(item, target, note, progress, root, now)
        with self._starting_thread(item.lead_id, target):
            root = threads.find(self.engine, item.lead_id, target) if item.lead_id else None
            return self._post_once(item, target, note, progress, root, now)

    def _post_once(
        self,
        item: OutboxItem,
        target: str,
        note: str | None,
        progress: dict[str, Any],
        root: Any,
        now: datetime,
    ) -> dict[str, Any]:
        key = correlation(item.idempotency_key)
        if progress.get("posting") is not None:  # an earlier attempt may have posted it
            found = self._search(progress, key)
            if found:
                return self._posted(item, target, progress, found, root, now)
        thread_ts = root.ts if root is not None else None
        channel_id = root.channel if root is not None else threads.known_channel(target)
        progress = {
            "posting": now.timestamp(),
            "target": target,
            "channel": channel_id,
            "thread_ts": thread_ts,
        }
        self._pace(item, channel_id or target, previous=item.result)
        record_progress(self.engine, item, progress)  # fenced: raises LeaseLost if taken over
        try:
            return self._send(item, target, note, progress, root, now)
        except (SlackApiError, OSError, HTTPException) as exc:
            raise classify(exc, progress) from exc  # keeps `posting`: the next try searches

    def _pace(self, item: OutboxItem, conversation: str, previous: Any) -> None:
        """Wait for a posting slot of the conversation. A slot further than MAX_WAIT away (a
        burst to one channel) is kept on the row, which goes back to the outbox until then:
        its thread posts elsewhere meanwhile, and the row keeps its place in the queue, unless
        it comes back more than STALE_SLOT after that slot (then it takes a new one)."""
        slot = (previous or {}).get("slot")
        if (
            not isinstance(slot, (int, float))
            or (previous or {}).get("slot_for") != conversation
            or slot < self.pacer.now() - STALE_SLOT  # came back late: the next post holds it
        ):
            slot = self.pacer.reserve(conversation)
        wait = slot - self.pacer.now()
        if wait > MAX_WAIT:
            kept = {**(previous or {}), "slot": slot, "slot_for": conversation}
            raise Deferred(wait - MAX_WAIT / 2, result=kept)
        self.pacer.sleep_until(slot)

    def _send(
        self,
        item: OutboxItem,
        target: str,
        note: str | None,
        progress: dict[str, Any],
        root: Any,
        now: datetime,
    ) -> dict[str, Any]:
        key = correlation(item.idempotency_key)
        thread_ts, channel_id = progress["thread_ts"], progress["channel"]
        text, blocks = render(item.payload, now=now, note=note)
        kwargs: dict[str, Any] = dict(
            channel=target,
            text=text,
            blocks=blocks,
            unfurl_links=False,
            unfurl_media=False,
            metadata={
                "event_type": EVENT_TYPE,
                "event_payload": {"key": key, "lead_id": item.lead_id or 0, "kind": item.kind},
            },
        )
        if thread_ts:
            kwargs.update(thread_ts=thread_ts, reply_broadcast=item.kind in BROADCAST_KINDS)
        for attempt in range(2):
            if attempt:  # the first post has its slot already (_pace)
                self.pacer.wait(channel_id or target)
            item.fence()  # the pacing wait may have outlived the lease: post only if it holds
            try:
                with paced_call():
                    response = self.client.chat_postMessage(**kwargs)
                break
            except (SlackApiError, OSError, HTTPException) as exc:
                if rate_limited(exc):
                    conversation = channel_id or target
                    raise self._requeued(item, conversation, exc, progress, attempt) from exc
                if thread_ts and error_code(exc) == "thread_not_found":  # someone deleted the root
                    threads.forget(self.engine, root.id)
                    again = {**progress, "thread_ts": None}
                    raise DeliveryError("thread gone", permanent=False, result=again) from exc
                if not ambiguous(exc) or attempt == 1:
                    raise classify(exc, progress) from exc
                found = self._search(progress, key)
                if found:
                    return self._posted(item, target, progress, found, root, now)
        threads.learn_channel(target, response["channel"])
        return self._posted(item, target, progress, str(response["ts"]), root, now, response)

    def _requeued(
        self,
        item: OutboxItem,
        conversation: str,
        exc: Exception,
        progress: Mapping[str, Any],
        attempt: int,
    ) -> Deferred | DeliveryError:
        """Slack refused the post (429): the row takes the conversation's next free slot, no
        earlier than Retry-After, and goes back to the outbox until just before it.

        Waiting out Retry-After and posting again would add a post to a conversation already
        at Slack's pace, on top of the next slot's, which then is refused in turn. A 429 posted
        nothing, so what this attempt recorded is dropped, unless an earlier attempt may have
        posted (then the next one searches first). Refused more than MAX_REFUSALS times in a
        row, it is retried like any other failure: counted, so it fails for good in the end.
        """
        earlier = attempt > 0 or (item.result or {}).get("posting") is not None
        refused = int((item.result or {}).get("refused", 0)) + 1
        if refused > MAX_REFUSALS:  # not pacing any more: retry with backoff, counted
            return classify(exc, progress)
        api_error("slack", transient=True)
        slot = self.pacer.take(conversation, self.pacer.now() + retry_after_of(exc))
        kept = {
            **(progress if earlier else {}),
            "slot": slot,
            "slot_for": conversation,
            "refused": refused,
        }
        return Deferred(slot - self.pacer.now() - MAX_WAIT / 2, result=kept)

    def _search(self, progress: Mapping[str, Any], key: str) -> str | None:
        """The ts of a message carrying `key` in the conversation or thread, if there is one."""
        return marks.find_marked(
            self.client,
            channel=progress.get("channel"),
            since=float(progress["posting"]),
            match=marks.keyed(key),
            thread_ts=progress.get("thread_ts"),
        )

    def _posted(
        self,
        item: OutboxItem,
        target: str,
        progress: Mapping[str, Any],
        ts: str,
        root: Any,
        now: datetime,
        response: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        channel = (response or {}).get("channel") or progress.get("channel")
        result = {
            "target": target,
            "channel": channel,
            "ts": ts,
            "thread_ts": progress.get("thread_ts"),
        }
        record_progress(self.engine, item, result)  # before anything else can fail
        if root is None and item.lead_id and not result["thread_ts"]:
            state = state_after(item.kind, item.payload)
            threads.create(
                self.engine, item.lead_id, target, str(channel), ts, item.payload, state, now
            )
        return result

    # --- the thread's first message ----------

    def _update_root(self, item: OutboxItem, result: Mapping[str, Any], now: datetime) -> None:
        root = threads.find(self.engine, item.lead_id, result["target"]) if item.lead_id else None
        if root is None:
            return
        root_payload = json.loads(root.root_payload)
        root_payload["lead"] = item.payload.get("lead") or root_payload.get("lead")
        state = state_after(item.kind, item.payload) or root.state
        text, blocks = render(root_payload, now=now, state=state)
        try:
            self.client.chat_update(channel=root.channel, ts=root.ts, text=text, blocks=blocks)
        except SlackApiError as exc:
            if exc.response.get("error") not in UPDATE_GIVE_UP:
                raise
            log.warning("cannot edit the first message of lead %s: %s", item.lead_id, exc)
        with write_transaction(self.engine, background=True) as conn:
            conn.execute(
                update(slack_threads)
                .where(slack_threads.c.id == root.id)
                .values(state=state, root_payload=json.dumps(root_payload), updated_at=now)
            )

    def _report(self, item: OutboxItem, error: DeliveryError) -> None:
        if error.permanent:  # one note an hour per error and destination, not one per row
            where = (item.payload.get("recipient") or {}).get("slack") or item.kind
            self.ops.note(
                f"failed:{error}:{where}",
                f"Slack message for lead {item.lead_id} ({item.kind}) failed for good: {error}",
                now=self.clock.now(),
            )


def render_plain(payload: Mapping[str, Any], now: datetime) -> str:
    """For the log deliverer: what would have been sent."""
    return plain_text(payload, now=now)
