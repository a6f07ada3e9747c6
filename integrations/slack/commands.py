"""POST /slack/commands: the `/sla` slash command, a rep's own open leads.

Verified like /slack/actions (v0 signature on the raw body, 5-minute window, the service's
clock), then answered in the response itself, well inside Slack's 3 seconds: one users.info
call (the caller's e-mail and time zone) and the queue query for the caller's owner ids. Only
the caller's leads are listed, and the answer is ephemeral: nobody else in the channel sees it.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs

from flask import Blueprint, Response, current_app, jsonify, request
from slack_sdk.errors import SlackApiError

from integrations.slack.command_messages import my_leads
from integrations.slack.interactivity import interactions_for, verify
from sla_bot.leadqueue.query import QueueFilter, open_leads, urgency
from sla_bot.web.errors import json_error

bp = Blueprint("slack_commands", __name__)
log = logging.getLogger(__name__)
COMMAND = "/sla"


def owner_ids(ruleset: Any, user: str, email: str | None) -> tuple[list[str], str | None]:
    """The HubSpot owner ids of the team members this Slack user is, and their name."""
    ids: list[str] = []
    name = None
    for team in ruleset.teams.values() if ruleset is not None else ():
        for member in team.members:
            same = member.slack == user or (
                email and member.email and member.email.lower() == email.lower()
            )
            if same and member.owner_id and member.owner_id not in ids:
                ids.append(member.owner_id)
                name = name or member.label()
    return ids, name


@bp.post("/slack/commands")
def command() -> Response | tuple[Any, int]:
    services = current_app.extensions["sla_bot"]
    secret = services.settings.slack_signing_secret
    if secret is None:
        return json_error(503, "SLACK_SIGNING_SECRET is not set: slash commands are refused")
    body = request.get_data(cache=True)
    now = services.clock.now()
    problem = verify(secret.get_secret_value(), body, request.headers, now.timestamp())
    if problem:
        return json_error(401, problem)
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items() if v}
    user = form.get("user_id") or ""
    if not user:
        return json_error(400, "slash command without user_id")
    if form.get("command", COMMAND) != COMMAND:
        return jsonify({"response_type": "ephemeral", "text": f"Unknown command {form['command']}"})
    slack = interactions_for(current_app)
    if slack is None or services.rules is None:
        return json_error(503, "SLACK_BOT_TOKEN or the rules are not set")
    tz, email = None, None
    try:
        profile = slack.client.users_info(user=user)["user"]
        tz, email = profile.get("tz"), (profile.get("profile") or {}).get("email")
    except SlackApiError as exc:  # answer anyway: ids from the rules, times in UTC
        log.warning("users.info for /sla failed: %s", exc.response.get("error"))
    loaded = services.rules.current()
    ids, name = owner_ids(loaded.ruleset, user, email)
    if not ids:
        text = (
            "You are not a rep in sla-bot's rules (no team member with your Slack id or "
            "e-mail), so no leads are yours here."
        )
        return jsonify({"response_type": "ephemeral", "text": text})
    items = []
    with services.engine.connect() as conn:
        for owner in ids:
            items += open_leads(conn, loaded, now, QueueFilter(owner=owner))
    items.sort(key=urgency)
    return jsonify(my_leads(items, tz=tz, now=now, who=name or user))
