"""A person in the demo's fake Slack pressing buttons and submitting modals.

Builds the payloads Slack sends (block_actions, view_submission), signs them with the signing
secret exactly as Slack does, and posts them to the service's real `/slack/actions` endpoint.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from slack_sdk.signature import SignatureVerifier

TEAM = {"id": "T0FAKE0001", "domain": "fake"}


@dataclass
class SlackUser:
    """Sends interactions to `actions_url` as Slack would, on the demo's clock."""

    actions_url: str
    signing_secret: str
    now: Callable[[], float]  # demo epoch seconds

    def press(
        self, user_id: str, channel: str, message_ts: str, action: Mapping[str, Any]
    ) -> tuple[str, requests.Response]:
        """Press a button of a message; returns (trigger id, the service's answer)."""
        trigger = f"{int(self.now())}.{uuid.uuid4().int % 10**12}.demo"
        payload = {
            "type": "block_actions",
            "team": TEAM,
            "user": {"id": user_id, "team_id": TEAM["id"]},
            "api_app_id": "A0DEMOAPP1",
            "trigger_id": trigger,
            "container": {
                "type": "message",
                "channel_id": channel,
                "message_ts": message_ts,
                "is_ephemeral": False,
            },
            "channel": {"id": channel},
            "message": {"ts": message_ts},
            "actions": [{**action, "type": "button", "action_ts": f"{self.now():.6f}"}],
        }
        return trigger, self._post(payload)

    def submit(
        self, user_id: str, view: Mapping[str, Any], values: Mapping[str, str]
    ) -> requests.Response:
        """Submit a modal with `values` ({block id: chosen value or typed text})."""
        state: dict[str, Any] = {}
        for block in view.get("blocks") or []:
            if block.get("type") != "input":
                continue
            block_id = block["block_id"]
            element = block["element"]
            chosen = values.get(block_id)
            state[block_id] = {element["action_id"]: _element_state(element, chosen)}
        payload = {
            "type": "view_submission",
            "team": TEAM,
            "user": {"id": user_id, "team_id": TEAM["id"]},
            "api_app_id": "A0DEMOAPP1",
            "view": {**view, "state": {"values": state}},
        }
        return self._post(payload)

    def _post(self, payload: Mapping[str, Any]) -> requests.Response:
        from urllib.parse import urlencode

        body = urlencode({"payload": json.dumps(payload)})
        timestamp = str(int(self.now()))
        signature = SignatureVerifier(self.signing_secret).generate_signature(
            timestamp=timestamp, body=body
        )
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature,
        }
        return requests.post(self.actions_url, data=body.encode(), headers=headers, timeout=10)


def _element_state(element: Mapping[str, Any], chosen: str | None) -> dict[str, Any]:
    kind = element.get("type")
    if kind in ("static_select", "radio_buttons"):
        options = element.get("options") or []
        picked = next((o for o in options if o.get("value") == chosen), None)
        return {"type": kind, "selected_option": picked}
    return {"type": kind, "value": chosen or None}
