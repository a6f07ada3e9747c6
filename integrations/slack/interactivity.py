"""POST /slack/actions: Slack's interactivity endpoint (buttons and modal submissions).

Checked on the raw body (v0 signature, 5-minute window both ways, the service's clock), then
answered at once: button work (lookups, the engine action, views.open, chat.update) runs after
the response in a small thread pool. A modal submission runs its engine action (one short
database transaction) before answering, so a refusal such as "already handled" is shown in the
modal itself; its Slack calls still run afterwards.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from slack_sdk.signature import SignatureVerifier

from integrations.slack import modals
from integrations.slack.client import make_client
from integrations.slack.handlers import Interactions
from integrations.slack.messages import ACK, LOG_TOUCH, REASSIGN, SNOOZE
from sla_bot.web.errors import json_error

bp = Blueprint("slack_actions", __name__)
WINDOW = 300  # seconds, either direction
OURS = frozenset({ACK, LOG_TOUCH, SNOOZE, REASSIGN})
ERROR_BLOCK = {LOG_TOUCH: "kind", SNOOZE: "until", REASSIGN: "owner"}
_build_lock = threading.Lock()


class _At:
    """slack_sdk's verifier clock, pinned to our clock's reading for this request."""

    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def verify(secret: str, body: bytes, headers: Mapping[str, str], now: float) -> str | None:
    """None if Slack signed this body recently; otherwise what is wrong with the request."""
    timestamp = headers.get("X-Slack-Request-Timestamp") or ""
    signature = headers.get("X-Slack-Signature") or ""
    if not timestamp or not signature:
        return "missing Slack signature headers"
    if not (timestamp.isascii() and timestamp.isdigit()):  # slack_sdk would raise on int()
        return "invalid Slack request timestamp"
    if abs(now - int(timestamp)) > WINDOW:
        return "stale Slack request: timestamp outside the 5-minute window"
    verifier = SignatureVerifier(secret, clock=_At(now))  # type: ignore[arg-type]
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        return "invalid Slack signature"
    return None


def interactions_for(app: Flask) -> Interactions | None:
    """The app's Interactions (tests may put their own in `app.extensions`)."""
    found = app.extensions.get("sla_bot_slack")
    if found is not None:
        return found  # type: ignore[no-any-return]
    services = app.extensions["sla_bot"]
    settings = services.settings
    if settings.slack_bot_token is None:
        return None
    with _build_lock:
        if "sla_bot_slack" not in app.extensions:
            from sla_bot.durations import parse_duration

            client = make_client(
                settings.slack_bot_token.get_secret_value(),
                settings.slack_api_base_url,
                timeout=settings.slack_timeout_seconds,
            )
            app.extensions["sla_bot_slack"] = Interactions(
                client,
                services.engine,
                services.clock,
                rules=services.rules,
                admins=frozenset(a.strip() for a in settings.admins.split(",") if a.strip()),
                silence=parse_duration(settings.ack_silence).as_timedelta(),
            )
    return app.extensions["sla_bot_slack"]  # type: ignore[no-any-return]


@bp.post("/slack/actions")
def actions() -> Response | tuple[str, int]:
    services = current_app.extensions["sla_bot"]
    secret = services.settings.slack_signing_secret
    if secret is None:
        return json_error(503, "SLACK_SIGNING_SECRET is not set: Slack buttons are refused")
    body = request.get_data(cache=True)
    problem = verify(
        secret.get_secret_value(), body, request.headers, services.clock.now().timestamp()
    )
    if problem:
        return json_error(401, problem)
    try:
        payload = json.loads(parse_qs(body.decode("utf-8"))["payload"][0])
    except (KeyError, IndexError, ValueError):
        return json_error(400, "expected a form field `payload` holding JSON")
    slack = interactions_for(current_app)
    if slack is None:
        return json_error(503, "SLACK_BOT_TOKEN is not set")
    if not isinstance(payload, dict) or not isinstance(payload.get("user"), dict):
        return json_error(400, "payload must be a JSON object with a user")
    if payload.get("type") == "block_actions":
        actions_ = payload.get("actions")
        if not isinstance(actions_, list) or not actions_ or not isinstance(actions_[0], dict):
            return json_error(400, "block_actions payload without actions")
        if actions_[0].get("action_id") in OURS:
            slack.runner.submit(slack.on_button, payload)
        return "", 200
    view = payload.get("view")
    if payload.get("type") == "view_submission" and isinstance(view, dict):
        if view.get("callback_id") not in ERROR_BLOCK:  # only the modals we open
            return "", 200
        try:
            answer = submit(slack, payload)
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            return json_error(400, f"malformed view_submission: {type(exc).__name__}")
        return jsonify(answer) if answer else ("", 200)
    return "", 200


def submit(slack: Interactions, body: Mapping[str, Any]) -> dict[str, Any] | None:
    """Run a modal's action; a `response_action: errors` answer if it is refused."""
    from sla_bot.engine import actions

    view, user = body["view"], body["user"]["id"]
    callback = view["callback_id"]
    ctx = modals.Context.load(view["private_metadata"])
    ref = actions.LeadRef(ctx.lead_id, ctx.version)

    def refuse(text: str) -> dict[str, Any]:
        return {"response_action": "errors", "errors": {ERROR_BLOCK[callback]: text[:150]}}

    try:
        summary = actions.lead_summary(slack.engine, ctx.lead_id, slack.rules)
    except actions.ActionRefused as exc:
        return refuse(str(exc).capitalize())
    refusal = slack.refusal(callback, user, summary, ctx.channel, ctx.version)
    if refusal:
        return refuse(refusal)
    now = slack.clock.now()
    if callback == LOG_TOUCH:
        kind = modals.value(view, "kind") or ""
        outcome = modals.value(view, "outcome") or "attempt"
        note = modals.value(view, "note") or ""
        result = slack.attempt(
            lambda: actions.log_touch(
                slack.engine, ref, by=user, at=now, kind=kind, outcome=outcome, note=note
            )
        )
        state = f"Handled: {kind} ({outcome}) logged at {now:%H:%M} UTC"
    elif callback == SNOOZE:
        try:
            until = now + timedelta(seconds=int(modals.value(view, "until") or ""))
        except ValueError:
            return refuse("Pick how long to snooze")
        result = slack.attempt(
            lambda: actions.snooze(slack.engine, ref, by=user, until=until, now=now)
        )
        state = f"Snoozed until {until:%H:%M} UTC (the SLA clock keeps running)"
    else:
        chosen = modals.value(view, "owner")
        target = None if chosen in (None, modals.NEXT_IN_ROTATION) else chosen
        result = slack.attempt(
            lambda: actions.reassign(
                slack.engine, slack.rules, ref, by=user, to_owner_id=target, now=now
            )
        )
        state = result.text
    if not result.ok:
        return refuse(result.text)
    slack.runner.submit(_after, slack, ctx, user, state, result.text)
    return None


def _after(slack: Interactions, ctx: modals.Context, user: str, state: str, text: str) -> None:
    slack.refresh(ctx.lead_id, ctx.channel, state)
    slack.tell(ctx.channel, user, text)
