"""Build HubSpot-signed requests the way HubSpot does, for tests and benchmarks."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sla_bot import webhook_tool

SECRET = "test-client-secret"
URL = "http://localhost/webhooks/hubspot"


def signed_headers(
    body: bytes,
    *,
    now: datetime,
    version: str = "v3",
    secret: str = SECRET,
    url: str = URL,
    method: str = "POST",
) -> dict[str, str]:
    return webhook_tool.signed_headers(
        body, url=url, secret=secret, now=now, version=version, method=method
    )


def event(
    n: int,
    *,
    portal: int = 62515,
    object_id: int | None = None,
    kind: str = "contact.creation",
    occurred_at: int = 1_763_650_800_000,
    **extra: Any,
) -> dict[str, Any]:
    """One Webhooks-API event in HubSpot's shape; `n` makes it distinct."""
    item: dict[str, Any] = {
        "eventId": 1000 + n,
        "subscriptionId": 12345,
        "portalId": portal,
        "occurredAt": occurred_at + n,
        "subscriptionType": kind,
        "attemptNumber": 0,
        "objectId": object_id if object_id is not None else 5000 + n,
        "changeSource": "CRM",
        "appId": 54321,
    }
    item.update(extra)
    return item


def batch(events: list[dict[str, Any]]) -> bytes:
    return json.dumps(events).encode()
