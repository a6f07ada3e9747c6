"""HubSpot error types and the classification of everything the SDK can raise.

Every failure that leaves :class:`~integrations.hubspot.client.HubSpotClient` is a
:class:`HubSpotError` that says whether it is worth retrying later:

* :class:`TransientHubSpotError` - 429, 408, 423, 5xx, timeouts, connection errors.
* :class:`PermanentHubSpotError` - any other 4xx (400/401/403/404/409...) and responses we could not
  understand. Retrying will not help.

``ambiguous`` marks transient failures after which the request *may* have been processed by
HubSpot (read timeout, connection reset after sending, 5xx). A 429 or a failed connect is never
ambiguous: HubSpot did not act on the request.

Classification deliberately duck-types the SDK exceptions: each generated package
(``hubspot.crm.contacts``, ``hubspot.crm.objects.tasks``, ...) has its *own* ``ApiException``
class, so ``except hubspot.crm.contacts.ApiException`` would miss a tasks error.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import urllib3.exceptions

TRANSIENT_STATUSES = frozenset({408, 423, 429})


class HubSpotError(Exception):
    """A failed HubSpot call. Never carries the access token or request headers."""

    transient: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        category: str | None = None,
        correlation_id: str | None = None,
        operation: str | None = None,
        retry_after: float | None = None,
        policy_name: str | None = None,
        ambiguous: bool = False,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.category = category
        self.correlation_id = correlation_id
        self.operation = operation
        self.retry_after = retry_after
        self.policy_name = policy_name
        self.ambiguous = ambiguous
        self.attempts = attempts

    def __str__(self) -> str:
        parts = [f"{self.operation}:" if self.operation else "", f"HTTP {self.status}"]
        if self.category:
            parts.append(self.category)
        parts.append(f"- {self.message}")
        if self.correlation_id:
            parts.append(f"(correlationId={self.correlation_id})")
        if self.attempts > 1:
            parts.append(f"after {self.attempts} attempts")
        return " ".join(p for p in parts if p)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self})"


class TransientHubSpotError(HubSpotError):
    """Retry later: rate limit, HubSpot outage, timeout, network trouble."""

    transient = True


class PermanentHubSpotError(HubSpotError):
    """Do not retry: the request itself is wrong, unauthorised, or the object is missing."""

    transient = False


def is_sdk_api_exception(exc: BaseException) -> bool:
    """True for any generated package's ``ApiException`` (and its 401/403/404/5xx subclasses)."""
    return (
        type(exc).__module__.startswith("hubspot.")
        and hasattr(exc, "status")
        and hasattr(exc, "body")
        and hasattr(exc, "headers")
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or HTTP-date); None when absent or unparsable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _decode_body(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            parsed = json.loads(body) if body.strip() else {}
        except ValueError:
            return {"message": body.strip()[:300]}
        body = parsed
    return body if isinstance(body, dict) else {}


def from_http_response(
    status: int, body: Any, headers: Any, *, operation: str | None = None
) -> HubSpotError:
    """Build the right error from a non-2xx HubSpot response (HubSpot's error JSON is optional)."""
    data = _decode_body(body)
    get_header = getattr(headers, "get", None)
    retry_after = parse_retry_after(get_header("Retry-After")) if get_header else None
    message = str(data.get("message") or f"HTTP {status}")
    fields: dict[str, Any] = {
        "status": status,
        "category": data.get("category") or data.get("errorType"),
        "correlation_id": data.get("correlationId"),
        "operation": operation,
        "retry_after": retry_after,
        "policy_name": data.get("policyName"),
    }
    if status in TRANSIENT_STATUSES or 500 <= status <= 599:
        # A 5xx may have been produced after HubSpot committed the write.
        return TransientHubSpotError(message, ambiguous=status >= 500, **fields)
    return PermanentHubSpotError(message, **fields)


def classify(exc: BaseException, *, operation: str | None = None) -> HubSpotError:
    """Map any exception raised by an SDK call to a Transient/Permanent HubSpotError."""
    if isinstance(exc, HubSpotError):
        return exc
    if is_sdk_api_exception(exc):
        status = getattr(exc, "status", None)
        if status:
            return from_http_response(
                int(status), getattr(exc, "body", None), exc.headers, operation=operation
            )
        # status 0: the SDK wraps SSL errors this way. Network trouble; the request may have gone.
        reason = str(getattr(exc, "reason", "") or type(exc).__name__).splitlines()[0]
        return TransientHubSpotError(reason, operation=operation, ambiguous=True)
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        return classify(exc.reason, operation=operation)
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        # Includes NewConnectionError / NameResolutionError: nothing was sent.
        return TransientHubSpotError(
            f"connection failed: {type(exc).__name__}", operation=operation
        )
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return TransientHubSpotError("read timed out", operation=operation, ambiguous=True)
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return TransientHubSpotError(
            f"connection error: {type(exc).__name__}", operation=operation, ambiguous=True
        )
    return PermanentHubSpotError(f"unexpected {type(exc).__name__}: {exc}", operation=operation)


class PortalUnavailable(LookupError):
    """No usable HubSpot client for a portal: never configured, removed, revoked, or paused.

    ``retry_after`` (seconds) is set when it is worth trying again later (a paused portal, a
    token whose portal is not discovered yet); otherwise the portal needs an operator.
    """

    def __init__(self, portal_id: int, reason: str, *, retry_after: float | None = None) -> None:
        messages = {
            "not_configured": "no HubSpot token for portal {p}",
            "removed": "HubSpot portal {p} was removed (sla-bot portals remove)",
            "revoked": "HubSpot portal {p} uninstalled the app or revoked its access: install it "
            "again at /oauth/hubspot/install",
            "paused": "HubSpot portal {p} reached its daily API limit; calls wait for the reset",
            "oauth_off": "HubSpot portal {p} was installed through OAuth, but HUBSPOT_CLIENT_ID "
            "is not set",
            "undiscovered": "the portal of HUBSPOT_ACCESS_TOKEN is not known yet",
        }
        super().__init__(messages.get(reason, "HubSpot portal {p}: " + reason).format(p=portal_id))
        self.portal_id, self.reason, self.retry_after = portal_id, reason, retry_after
