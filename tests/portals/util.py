"""OAuth installs through the real routes, against the fake HubSpot, for the portals tests."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import urllib3
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from integrations.hubspot.fake import FakeHubSpot
from sla_bot.db.schema import hubspot_portals, oauth_states
from tests.signing import SECRET

KEY = "NDqv17kiR5vRqiCOJKnCeYC1Gd4hDsyph2-n7Wxng2o="  # test-only Fernet key
OTHER_KEY = "UqRbrx4G1d856eXzDvQJfKdwpHXNBcYr7eQXIcJ3bSo="
CLIENT_ID = "sla-bot-test-app"
APP_ID = 777
REDIRECT = "https://sla.example.com/oauth/hubspot/callback"


def oauth_env(fake: FakeHubSpot, **extra: str) -> dict[str, str]:
    """Settings for one OAuth app; registers the app with the fake (client secret = SECRET)."""
    fake.register_app(CLIENT_ID, SECRET, APP_ID)
    return {
        "HUBSPOT_CLIENT_ID": CLIENT_ID,
        "HUBSPOT_CLIENT_SECRET": SECRET,
        "HUBSPOT_APP_ID": str(APP_ID),
        "HUBSPOT_OAUTH_REDIRECT_URL": REDIRECT,
        "HUBSPOT_AUTHORIZE_URL": fake.authorize_url,
        "HUBSPOT_API_BASE_URL": fake.base_url,
        "SLA_BOT_SECRET_KEY": KEY,
        **extra,
    }


def approve(fake: FakeHubSpot, authorize_url: str) -> str:
    """The admin's browser at HubSpot: approve, get redirected; returns the callback URL."""
    http = urllib3.PoolManager(retries=False)
    try:
        resp = http.request("GET", authorize_url, redirect=False)
    finally:
        http.clear()
    assert resp.status == 302, resp.data
    return resp.headers["Location"]


def callback_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def install(web: Any, fake: FakeHubSpot, portal_id: int) -> Any:
    """The whole browser round trip; returns the callback's response."""
    fake.add_portal(portal_id)
    fake.login_portal = portal_id
    start = web.get("/oauth/hubspot/install")
    assert start.status_code == 302
    return web.get(callback_path(approve(fake, start.headers["Location"])))


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def stored(engine: Engine) -> tuple[int, int]:
    """(portal rows, consumed states)."""
    with engine.connect() as conn:
        portals = conn.execute(select(func.count()).select_from(hubspot_portals)).scalar_one()
        states = conn.execute(select(func.count()).select_from(oauth_states)).scalar_one()
    return portals, states
