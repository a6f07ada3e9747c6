"""POST /webhooks/hubspot: verify, validate, commit, then acknowledge.

Order of checks: size (413, before reading the body), content type (415), signature (401,
nothing written; a Webhooks-API array without v3 from a signer known to use v3 is a downgrade
replay, also 401, see `sla_bot.signers`), payload (400; a signed but unusable body goes to the
dead-letter table), then one durable INSERT (deduplicated by body hash) and 200. A database
that cannot commit in time answers 503 so HubSpot retries. Nothing here calls HubSpot or Slack.

This endpoint is a plain WSGI callable in front of the Flask app (`WebhookEndpoint`), not a
Flask view: it is the one path that takes HubSpot's whole volume, and Flask's request and
response machinery cost more CPU per request than checking the 100 events (docs/performance.md).
Every other path goes to Flask unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote

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
from sla_bot.web.errors import json_error_body

log = logging.getLogger(__name__)
PATH = "/webhooks/hubspot"
_REASONS = {
    200: "OK",
    400: "BAD REQUEST",
    401: "UNAUTHORIZED",
    405: "METHOD NOT ALLOWED",
    413: "REQUEST ENTITY TOO LARGE",
    415: "UNSUPPORTED MEDIA TYPE",
    500: "INTERNAL SERVER ERROR",
    503: "SERVICE UNAVAILABLE",
}
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Answer:
    """A response: status, JSON body, extra headers."""

    __slots__ = ("status", "body", "headers")

    def __init__(self, status: int, body: bytes, headers: list[tuple[str, str]] | None = None):
        self.status = status
        self.body = body
        self.headers = headers or []


class WebhookRequest:
    """What the checks need from the WSGI environ, read lazily (no Werkzeug request object)."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET")
        self.content_type = environ.get("CONTENT_TYPE") or None
        self.mimetype = (self.content_type or "").split(";", 1)[0].strip().lower()
        length = environ.get("CONTENT_LENGTH", "")
        self.content_length = int(length) if length.isdigit() else None

    @property
    def headers(self) -> WebhookRequest:
        return self  # `get(name)`, case-insensitive, as signatures.verify needs

    def get(self, name: str, default: str | None = None) -> str | None:
        key = "HTTP_" + name.upper().replace("-", "_")
        value = self.environ.get(key)
        return default if value is None else value

    def query(self, name: str) -> str:
        """The first value of a query parameter, "" if absent."""
        qs = self.environ.get("QUERY_STRING", "")
        if not qs:
            return ""
        return next((v for k, v in parse_qsl(qs, keep_blank_values=True) if k == name), "")

    def url(self) -> str:
        """This request's own URL, path and query undecoded (as HubSpot signed it)."""
        environ = self.environ
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if not raw:
            path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
            raw = quote("/" + path.lstrip("/"))
            if environ.get("QUERY_STRING"):
                raw += "?" + environ["QUERY_STRING"]
        scheme = environ.get("wsgi.url_scheme", "http")
        host = environ.get("HTTP_HOST")
        if not host:
            host = f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"
        # The scheme's default port is not part of the URL HubSpot signs (as in Werkzeug).
        default = ":443" if scheme == "https" else ":80"
        if host.endswith(default):
            host = host[: -len(default)]
        return f"{scheme}://{host}{raw}"

    def read_body(self, limit: int) -> bytes | None:
        """At most `limit` bytes; None if the body is larger (never reads all of a huge body).

        Without a Content-Length, only a server that marks the input as terminated (gunicorn
        for chunked bodies) is read from; otherwise the body is empty, as in Werkzeug.
        """
        stream = self.environ["wsgi.input"]
        if self.content_length is None:
            if not self.environ.get("wsgi.input_terminated"):
                return b""
            data = stream.read(limit + 1)
            return None if len(data) > limit else data
        want = self.content_length
        chunks = []
        while want > 0:
            chunk = stream.read(want)
            if not chunk:
                raise _Disconnected
            chunks.append(chunk)
            want -= len(chunk)
        return b"".join(chunks)


class _Disconnected(Exception):
    """The client sent less than its Content-Length."""


class WebhookEndpoint:
    """WSGI middleware: answers POST /webhooks/hubspot itself, passes everything else on."""

    def __init__(self, services: Services, app: WSGIApp) -> None:
        self.services = services
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") != PATH:
            return self.app(environ, start_response)
        started = time.perf_counter()
        request = WebhookRequest(environ)
        if request.method != "POST":
            answer = _reject(405, "method", "method not allowed")
            answer.headers.append(("Allow", "POST"))
        else:
            try:
                answer = receive(self.services, request)
            except _Disconnected:
                answer = _reject(400, "disconnected", "body shorter than its Content-Length")
            except Exception:
                log.exception("webhook request failed")
                answer = Answer(500, json_error_body("internal error"))
        metrics.REQUEST_LATENCY.labels(PATH, str(answer.status)).observe(
            time.perf_counter() - started
        )
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(answer.body))),
            *answer.headers,
        ]
        start_response(f"{answer.status} {_REASONS[answer.status]}", headers)
        return [answer.body]


def _reject(status: int, reason: str, message: str, details: list[str] | None = None) -> Answer:
    metrics.REQUESTS_REJECTED.labels(reason=reason).inc()
    headers = [("Connection", "close")] if status == 413 else []
    return Answer(status, json_error_body(message, details), headers)


def _signed_uri(services: Services, request: WebhookRequest) -> str:
    """The URL HubSpot signed: the configured public URL, else this request's own, undecoded."""
    return services.settings.public_url or request.url()


def _portal_hint(request: WebhookRequest) -> int | None:
    value = request.query("portalId")
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
    request: WebhookRequest,
    body: bytes,
    reason: str,
    now: datetime,
    version: str,
    details: list[str] | None = None,
) -> Answer:
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


def receive(services: Services, request: WebhookRequest) -> Answer:
    """The checks in order, then the durable write; the answer to send."""
    settings = services.settings
    limit = settings.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return _reject(413, "too_large", f"body larger than {limit} bytes")
    if request.mimetype != "application/json":
        return _reject(415, "content_type", "expected Content-Type: application/json")
    body = request.read_body(limit)
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
            uri=_signed_uri(services, request),
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

    portal_hint = _portal_hint(request)
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
            return _dead_letter(services, request, body, str(exc), now, version, exc.errors)
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
        return _dead_letter(services, request, body, f"cannot store: {db_error(exc)}", now, version)
    metrics.EVENTS_RECEIVED.inc(parsed.size)
    return Answer(200, b'{"received":%d}\n' % parsed.size)
