"""What the buttons and modals do, after the HTTP request has been acknowledged.

Who may act: the lead's owner, the managers of its team, and SLA_BOT_ADMINS; Reassign is for
managers and admins only. Everyone else gets an ephemeral refusal and nothing changes. Every
action is a compare-and-set in the engine (`LeadRef` carries the version on the button), so a
button from an old state answers "already handled".
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import update
from sqlalchemy.engine import Engine

from integrations.slack import modals, threads
from integrations.slack.messages import ACK, LOG_TOUCH, REASSIGN, SNOOZE, lead_label, render
from integrations.slack.users import Directory
from sla_bot.clock import Clock
from sla_bot.db.engine import write_transaction
from sla_bot.db.schema import slack_threads

log = logging.getLogger(__name__)
NOT_ALLOWED = "Only the lead's owner, the team's managers and sla-bot admins can do that."
MANAGERS_ONLY = "Only the team's managers (or sla-bot admins) can reassign a lead."


class Runner:
    """Background work after the 3-second ack; `wait_idle` lets tests wait for it."""

    def __init__(self, workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slack-action")
        self._futures: list[Future[None]] = []

    def submit(self, func: Callable[..., None], *args: Any) -> None:
        future = self._pool.submit(self._safe, func, *args)
        self._futures = [f for f in self._futures if not f.done()] + [future]

    @staticmethod
    def _safe(func: Callable[..., None], *args: Any) -> None:
        try:
            func(*args)
        except Exception:
            log.exception("slack action failed")

    def wait_idle(self, timeout: float = 10.0) -> None:
        wait(list(self._futures), timeout=timeout)


@dataclass
class Interactions:
    client: WebClient
    engine: Engine
    clock: Clock
    rules: Any = None  # RulesHolder or RuleSet
    admins: frozenset[str] = frozenset()
    silence: timedelta = timedelta(minutes=30)
    runner: Runner = field(default_factory=Runner)
    directory: Directory | None = None

    def __post_init__(self) -> None:
        if self.directory is None:
            self.directory = Directory(self.client, self.engine, rules=self.rules)

    # --- authorization ----------

    def role(self, user: str, summary: Mapping[str, Any], channel: str | None) -> str | None:
        """ "admin", "manager", "owner" or None, from the rules and cached Slack ids only."""
        assert self.directory is not None
        if user in self.admins:
            return "admin"
        ruleset = self.directory.ruleset()
        team = ruleset.teams.get(summary.get("team") or "") if ruleset is not None else None
        now = self.clock.now()
        if team is not None and user in {self._slack_id(p, now) for p in team.managers}:
            return "manager"
        owner_id = summary.get("owner_id")
        found = ruleset.find_member(owner_id=owner_id) if ruleset and owner_id else None
        if found is not None and self._slack_id(found[1], now) == user:
            return "owner"
        if channel and channel.startswith("D") and owner_id:  # our DM to the owner
            root = threads.by_channel(self.engine, summary.get("id"), channel)
            recipient = json.loads(root.root_payload).get("recipient", {}) if root else {}
            if recipient.get("role") == "owner" and recipient.get("owner_id") == owner_id:
                return "owner"
        return None

    def _slack_id(self, person: Any, now: Any) -> str | None:
        assert self.directory is not None
        if person.slack:
            return str(person.slack)
        return self.directory.lookup_email(person.email, now=now) if person.email else None

    # --- buttons ----------

    def on_button(self, body: Mapping[str, Any]) -> None:
        from sla_bot.engine import actions

        action = body["actions"][0]
        user = body["user"]["id"]
        channel = (body.get("container") or {}).get("channel_id")
        ts = (body.get("container") or {}).get("message_ts")
        lead_id, version = (int(x) for x in str(action["value"]).split(":", 1))
        ref = actions.LeadRef(lead_id, version)
        try:
            summary = actions.lead_summary(self.engine, lead_id, self.rules)
        except actions.ActionRefused as exc:
            return self.tell(channel, user, str(exc))
        refusal = self.refusal(action["action_id"], user, summary, channel, version)
        if refusal:
            return self.tell(channel, user, refusal)
        ctx = modals.Context(lead_id, version, channel, ts)
        label = lead_label(summary)
        if action["action_id"] == ACK:
            now = self.clock.now()
            result = self.attempt(
                lambda: actions.acknowledge(
                    self.engine, ref, by=user, now=now, silence=self.silence
                )
            )
            if result.ok:
                self.refresh(lead_id, channel, f"On it since {now:%H:%M} UTC")
            return self.tell(channel, user, result.text)
        if action["action_id"] == LOG_TOUCH:
            view = modals.log_touch_view(ctx, label)
        elif action["action_id"] == SNOOZE:
            view = modals.snooze_view(
                ctx, label, getattr(actions, "SNOOZE_CAP", timedelta(hours=24))
            )
        else:
            view = modals.reassign_view(ctx, label, self.teammates(summary))
        try:
            self.client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackApiError as exc:
            log.warning("views.open failed: %s", exc.response.get("error"))
            self.tell(channel, user, "Slack took too long to open the form. Please press it again.")

    def refusal(
        self, action_id: str, user: str, summary: Mapping[str, Any], channel: str | None, v: int
    ) -> str | None:
        role = self.role(user, summary, channel)
        if role is None:
            return NOT_ALLOWED
        if action_id == REASSIGN and role not in ("manager", "admin"):
            return MANAGERS_ONLY
        if summary.get("status") == "closed":
            return "This lead is closed."
        if int(summary.get("version", -1)) != v:
            return "Already handled: this message is out of date."
        return None

    def teammates(self, summary: Mapping[str, Any]) -> list[tuple[str, str]]:
        assert self.directory is not None
        ruleset = self.directory.ruleset()
        team = ruleset.teams.get(summary.get("team") or "") if ruleset is not None else None
        if team is None:
            return []
        return [
            (str(m.owner_id), m.label())
            for m in team.members
            if m.owner_id and m.owner_id != summary.get("owner_id")
        ]

    # --- feedback ----------

    @dataclass(frozen=True)
    class Result:
        ok: bool
        text: str

    def attempt(self, action: Callable[[], str]) -> Interactions.Result:
        from sla_bot.engine.actions import ActionRefused

        try:
            return self.Result(True, action())
        except ActionRefused as exc:
            return self.Result(False, str(exc).capitalize())

    def tell(self, channel: str | None, user: str, text: str) -> None:
        """An ephemeral answer only `user` sees."""
        if not channel:
            return
        try:
            self.client.chat_postEphemeral(channel=channel, user=user, text=text)
        except SlackApiError as exc:
            log.warning("cannot answer %s in %s: %s", user, channel, exc.response.get("error"))

    def refresh(self, lead_id: int, channel: str | None, state: str) -> None:
        """Edit the lead's first message in this conversation: new state, fresh buttons."""
        from sla_bot.engine import actions

        root = threads.by_channel(self.engine, lead_id, channel) if channel else None
        if root is None:
            return
        payload = json.loads(root.root_payload)
        payload["lead"] = {**payload.get("lead", {}), **self._lead(actions, lead_id)}
        now = self.clock.now()
        text, blocks = render(payload, now=now, state=state)
        try:
            self.client.chat_update(channel=root.channel, ts=root.ts, text=text, blocks=blocks)
        except SlackApiError as exc:
            log.warning("cannot edit the message of lead %s: %s", lead_id, exc)
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(slack_threads)
                .where(slack_threads.c.id == root.id)
                .values(state=state[:255], root_payload=json.dumps(payload), updated_at=now)
            )

    def _lead(self, actions: Any, lead_id: int) -> dict[str, Any]:
        try:
            summary = actions.lead_summary(self.engine, lead_id, self.rules)
        except actions.ActionRefused:
            return {}
        return {k: v for k, v in summary.items() if k not in ("status", "team", "closed_reason")}
