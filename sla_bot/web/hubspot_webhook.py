"""POST /webhooks/hubspot: verify, validate, commit, then acknowledge.

Order of checks: size (413, before reading the body), content type (415), signature (401,
nothing written; a Webhooks-API array without v3 from a signer known to use v3 is a downgrade
replay, also 401, see `sla_bot.signers`), payload (400; a signed but unusable body goes to the
dead-letter table), then one durable INSERT (deduplicated by body hash) and 200. A database
that cannot commit in time answers 503 so HubSpot retries. Nothing here calls HubSpot or Slack.
"""

from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import quote

from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from integrations.hubspot import signatures
from integrations.hubspot.payloads import PayloadError, parse, validate
from sla_bot import metrics
from sla_bot.config import ConfigError
from sla_bot.intake import store_batch, store_dead_letter
from sla_bot.logs import db_error
from sla_bot.portals.config import webhook_secrets
from sla_bot.services import Services
from sla_bot.signers import is_webhooks_api_array, signer_key
from sla_bot.web.errors import json_error

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
    ok = value.isascii() and value.isdigit() and len(value) <= 18 and int(value) > 0
    return int(value) if ok else None


def _other_portal(body: bytes, now: datetime, hint: int | None, signer: int) -> int | None:
    """A portal other than the signing private app's own that the (signed) body names."""
    for event in parse(body, received_at=now, portal_hint=hint).events:
        if event.portal_id != signer:
            return event.portal_id
    return None


def _dead_letter(
    services: Services,
    body: bytes,
    reason: str,
    now: datetime,
    version: str,
    details: list[str] | None = None,
) -> Response:
    store_dead_letter(
        services.engine,
        body=body,
        reason=reason,
        received_at=now,
        content_type=request.content_type,
        signature_version=version,
    )
    metrics.DEAD_LETTERS.inc()
    return _reject(400, "malformed", "malformed webhook payload", details)


def _new_v3_signer(services: Services, signer: str | None, version: str) -> str | None:
    """The signer to record as a v3 user with this batch, unless this process already did."""
    if version != "v3" or signer is None or services.v3_signers.known(signer):
        return None
    return signer


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
    v3_signer: str | None = None
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
        v3_signer = signer_key(signer)

    portal_hint = _portal_hint()
    try:
        if v3_signer is not None and version != "v3" and is_webhooks_api_array(body):
            required = services.v3_signers.requires_v3(
                services.engine, v3_signer, require_app=settings.webhook_require_v3
            )
            if required and "v3" in settings.accepted_signature_versions:
                log.warning("webhook refused: %s signs with v3, request has %s", v3_signer, version)
                return _reject(
                    401, "downgrade", "this app signs with v3: X-HubSpot-Signature-v3 required"
                )
        try:
            parsed = validate(body, received_at=now, portal_hint=portal_hint)
        except PayloadError as exc:
            log.warning("signed webhook kept as dead letter: %s", exc)
            return _dead_letter(services, body, str(exc), now, version, exc.errors)
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
            v3_signer=_new_v3_signer(services, v3_signer, version),
        )
        if version == "v3" and v3_signer is not None:
            services.v3_signers.remember(v3_signer)
    except OperationalError as exc:
        log.error("could not store webhook (%s); answering 503 so HubSpot retries", db_error(exc))
        return _reject(503, "unavailable", "storage unavailable, retry later")
    except SQLAlchemyError as exc:
        # Intake bounds every column, so this is our bug; still, the signed body is kept.
        log.error("webhook refused by the database (%s); kept as a dead letter", db_error(exc))
        return _dead_letter(services, body, f"cannot store: {db_error(exc)}", now, version)
    metrics.EVENTS_RECEIVED.inc(parsed.size)
    # Built by hand: jsonify's provider machinery was ~9% of the request's CPU.
    return Response(b'{"received":%d}\n' % parsed.size, mimetype="application/json")
