"""GET /oauth/hubspot/install and /oauth/hubspot/callback: connect a portal through OAuth.

Install sends the admin's browser to HubSpot's authorize URL with the app's client id, scopes,
redirect URL and a `state`: a Fernet token (signed and encrypted with SLA_BOT_SECRET_KEY) holding
a random nonce and the client id, valid for STATE_TTL. The nonce is also set as a cookie, so the
callback must come back to the browser that started the install.

The callback refuses, with a 4xx page and without storing anything: an error from HubSpot, a
missing, forged or expired state, a state from another browser, a state already used (replay),
a code HubSpot will not exchange (e.g. issued to another app), a token of another app
(HUBSPOT_APP_ID) or of a portal not in HUBSPOT_ALLOWED_PORTALS. Otherwise it consumes the state
and stores the portal's tokens, encrypted, in one transaction, and names the connected portal.
Every value shown is HTML-escaped.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from flask import Blueprint, Response, current_app, redirect, request
from markupsafe import escape

from integrations.hubspot.errors import HubSpotError
from sla_bot import metrics
from sla_bot.portals import store
from sla_bot.portals.apps import oauth_app, secret_box
from sla_bot.services import Services

log = logging.getLogger(__name__)
bp = Blueprint("hubspot_oauth", __name__)

STATE_TTL = timedelta(minutes=10)
COOKIE = "sla_bot_oauth_nonce"
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sla-bot: {title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem}}
</style></head><body><h1>{title}</h1><p>{message}</p></body></html>
"""


def _page(status: int, title: str, message: str, outcome: str) -> Response:
    metrics.OAUTH_INSTALLS.labels(outcome=outcome).inc()
    html = PAGE.format(title=escape(title), message=escape(message))
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


def _services() -> Services:
    return current_app.extensions["sla_bot"]


NOT_CONFIGURED = (
    "Set HUBSPOT_CLIENT_ID, HUBSPOT_CLIENT_SECRET, HUBSPOT_OAUTH_REDIRECT_URL and "
    "SLA_BOT_SECRET_KEY to install the app through OAuth. Nothing was stored."
)


@bp.get("/oauth/hubspot/install")
def install() -> Response:
    services = _services()
    settings = services.settings
    app, box = oauth_app(settings), secret_box(settings)
    if app is None or box is None:
        return _page(404, "OAuth install is not configured", NOT_CONFIGURED, "not_configured")
    nonce = secrets.token_urlsafe(24)
    state = box.seal({"n": nonce, "c": app.client_id}, now=services.clock.now())
    response = redirect(app.authorize_url(settings.hubspot_oauth_scopes, state), code=302)
    response.set_cookie(
        COOKIE,
        nonce,
        max_age=int(STATE_TTL.total_seconds()),
        path="/oauth/hubspot",
        secure=app.redirect_uri.startswith("https://"),
        httponly=True,
        samesite="Lax",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/oauth/hubspot/callback")
def callback() -> Response:
    services = _services()
    settings = services.settings
    app, box = oauth_app(settings), secret_box(settings)
    if app is None or box is None:
        return _page(
            404, "OAuth install is not configured", "Nothing was stored.", "not_configured"
        )
    if request.args.get("error"):
        detail = request.args.get("error_description") or request.args["error"]
        return _page(400, "HubSpot did not connect the app", detail[:300], "denied")
    code, state = request.args.get("code", ""), request.args.get("state", "")
    if not code or not state:
        return _page(400, "Invalid callback", "The code or state is missing.", "bad_request")
    now = services.clock.now()
    payload = box.unseal(state, ttl=int(STATE_TTL.total_seconds()), now=now)
    if payload is None or not isinstance(payload.get("n"), str):
        return _page(
            400,
            "Invalid or expired install link",
            "This callback's state was not issued by this service, or it is older than "
            "10 minutes. Start again from /oauth/hubspot/install.",
            "bad_state",
        )
    nonce = payload["n"]
    if payload.get("c") != app.client_id:
        return _page(400, "Unknown app", "This install was started for another app.", "other_app")
    if store.state_used(services.engine, nonce):
        return _page(400, "Install link already used", "Nothing was changed.", "replayed")
    if request.cookies.get(COOKIE) != nonce:
        return _page(
            400,
            "Install started elsewhere",
            "This callback does not belong to an install started in this browser. Start again "
            "from /oauth/hubspot/install.",
            "other_browser",
        )
    try:
        tokens = app.exchange(code)
        info = app.token_info(tokens.access_token)
    except HubSpotError as err:
        log.warning("OAuth install failed: %s", err)
        if err.transient:
            return _page(502, "HubSpot is not answering", "Try the install again.", "hubspot")
        return _page(
            400,
            "HubSpot refused the install",
            f"HubSpot did not accept the authorization code ({err.message}). Was it issued to "
            "another app? Nothing was stored.",
            "refused",
        )
    if settings.hubspot_app_id is not None and info.app_id != settings.hubspot_app_id:
        return _page(
            403,
            "Unknown app",
            f"The token belongs to app {info.app_id}, not this one.",
            "other_app",
        )
    allowed = settings.allowed_portals
    if allowed and info.portal_id not in allowed:
        log.warning("OAuth install refused for portal %s (HUBSPOT_ALLOWED_PORTALS)", info.portal_id)
        return _page(
            403,
            "Portal not allowed",
            f"Portal {info.portal_id} may not be connected to this service.",
            "not_allowed",
        )
    try:
        store.save_install(
            services.engine,
            info=info,
            tokens=tokens,
            box=box,
            nonce=nonce,
            state_expires_at=now + STATE_TTL,
            now=now,
        )
    except store.StateReplayed:
        return _page(400, "Install link already used", "Nothing was changed.", "replayed")
    log.info("HubSpot portal %s connected through OAuth", info.portal_id)
    name = f"{info.hub_domain} ({info.portal_id})" if info.hub_domain else str(info.portal_id)
    response = _page(
        200,
        "HubSpot portal connected",
        f"Portal {name} is connected. Its webhooks are processed and its leads followed up "
        "from now on. You can close this page.",
        "connected",
    )
    response.delete_cookie(COOKIE, path="/oauth/hubspot")
    return response
