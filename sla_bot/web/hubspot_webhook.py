"""POST /webhooks/hubspot: verify, validate, commit, then acknowledge.

Order of checks: size (413, before reading the body), content type (415), signature (401,
nothing written), payload (400; a signed but unusable body goes to the dead-letter table), then
one durable INSERT and 200. A database that cannot commit in time answers 503 so HubSpot
retries. Nothing here calls HubSpot or Slack.
"""

from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import quote

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.exc import OperationalError

from integrations.hubspot import signatures
from integrations.hubspot.payloads import PayloadError, parse, validate
from sla_bot import metrics
from sla_bot.config import ConfigError
from sla_bot.intake import store_batch, store_dead_letter
from sla_bot.portals.config import webhook_secrets
from sla_bot.web.errors import json_error
from sla_bot.web.services import Services

log = logging.getLogger(__name__)
bp = Blueprint("hubspot_webhook", __name__)


def _reject(status: int, reason: str, message: str, details: list[str] | None = None) -> Response:
    metrics.REQUESTS_REJECTED.labels(reason=reason).inc()
    response = json_error(status, message, details)
    if status == 413:
        response.headers["Connection"] = "close"
    return response


def _signed_uri(services: Services) -> str:
    """The URL HubSpot signed: the configured public URL, else this request's own, undecoded."""
    if services.settings.public_url:
        return services.settings.public_url
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if not raw:
        raw = quote(request.path)
        if request.query_string:
            raw += "?" + request.query_string.decode("latin-1")
    return f"{request.scheme}://{request.host}{raw}"


def _read_body(limit: int) -> bytes | None:
    """Read at most `limit` bytes; None if the body is larger (never reads all of a huge body)."""
    length = request.content_length
    if length is not None and length > limit:
        return None
    data = request.stream.read(limit + 1)
    return None if len(data) > limit else data


def _portal_hint() -> int | None:
    value = request.args.get("portalId", "")
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None


def _other_portal(body: bytes, now: datetime, hint: int | None, signer: int) -> int | None:
    """A portal other than the signing private app's own that the (signed) body names."""
    for event in parse(body, received_at=now, portal_hint=hint).events:
        if event.portal_id != signer:
            return event.portal_id
    return None


@bp.post("/webhooks/hubspot")
def receive() -> Response:
    services: Services = current_app.extensions["sla_bot"]
    settings = services.settings
    limit = settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return _reject(413, "too_large", f"body larger than {limit} bytes")
    if request.mimetype != "application/json":
        return _reject(415, "content_type", "expected Content-Type: application/json")
    body = _read_body(limit)
    if body is None:
        return _reject(413, "too_large", f"body larger than {limit} bytes")

    now = services.clock.now()
    try:
        candidates = webhook_secrets(settings)
    except ConfigError as exc:
        log.error("webhook secrets unavailable: %s", exc)
        return _reject(503, "no_secret", "webhooks disabled: the portals file cannot be read")
    signer: int | None = None
    if not candidates:
        if not settings.insecure_allow_unsigned:
            return _reject(503, "no_secret", "webhooks disabled: HUBSPOT_CLIENT_SECRET is not set")
        version = "none"
        log.warning("INSECURE: accepting an unsigned webhook (SLA_BOT_INSECURE_ALLOW_UNSIGNED)")
    else:
        verdict = signatures.verify(
            headers=request.headers,
            method=request.method,
            uri=_signed_uri(services),
            body=body,
            secret=[secret for secret, _ in candidates],
            now=now,
            accept=settings.accepted_signature_versions,
        )
        if not verdict.ok:
            reason = "stale" if "minutes" in verdict.reason else "signature"
            log.info("webhook refused: %s (%s)", verdict.reason, verdict.version)
            return _reject(401, reason, verdict.reason)
        version = verdict.version
        signer = candidates[verdict.secret_index][1]  # a private app's portal, or None

    portal_hint = _portal_hint()
    try:
        try:
            parsed = validate(body, received_at=now, portal_hint=portal_hint)
        except PayloadError as exc:
            store_dead_letter(
                services.engine,
                body=body,
                reason=str(exc),
                received_at=now,
                content_type=request.content_type,
                signature_version=version,
            )
            metrics.DEAD_LETTERS.inc()
            log.warning("signed webhook kept as dead letter: %s", exc)
            return _reject(400, "malformed", "malformed webhook payload", exc.errors)
        if signer is not None and (other := _other_portal(body, now, portal_hint, signer)):
            log.warning(
                "webhook refused: signed by portal %s's app, names portal %s", signer, other
            )
            return _reject(401, "signature", f"signed with portal {signer}'s secret")
        store_batch(
            services.engine,
            body=body,
            source=parsed.source,
            signature_version=version,
            received_at=now,
            portal_hint=portal_hint,
        )
    except OperationalError:
        log.exception("could not store webhook; answering 503 so HubSpot retries")
        return _reject(503, "unavailable", "storage unavailable, retry later")
    metrics.EVENTS_RECEIVED.inc(parsed.size)
    return jsonify({"received": parsed.size})
