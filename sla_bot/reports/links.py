"""Signed, expiring URLs of the /reports page: what `sla-bot report link` prints and what the
Slack digests carry, built one way."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from sla_bot.reports import access


def base_url(settings: Any, explicit: str | None = None) -> str:
    """The service's public origin: `explicit`, else SLA_BOT_PUBLIC_URL's, else host:port."""
    if explicit:
        return explicit.rstrip("/")
    if settings.public_url:
        parts = urlsplit(settings.public_url)
        return f"{parts.scheme}://{parts.netloc}"
    return f"http://{settings.host}:{settings.port}"


def signed_url(
    settings: Any,
    *,
    now: datetime,
    lifetime: timedelta,
    params: Mapping[str, str | None],
    portal: int | None = None,
    base: str | None = None,
) -> str:
    """The /reports URL with these filters and an `access` value limited to `portal` (None: all
    portals). ValueError if no SLA_BOT_SECRET_KEY is set or the lifetime is out of range."""
    token = access.from_settings(settings).sign(now=now, lifetime=lifetime, portal=portal)
    query = {k: v for k, v in params.items() if v is not None and k != "portal"}
    if portal is not None:
        query["portal"] = str(portal)
    query["access"] = token
    return f"{base_url(settings, base)}/reports?{urlencode(query)}"
