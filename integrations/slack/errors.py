"""Slack failures as outbox outcomes: permanent, retry later, or possibly already done."""

from __future__ import annotations

from collections.abc import Mapping
from http.client import HTTPException
from typing import Any

from slack_sdk.errors import SlackApiError

from sla_bot.metrics_store import api_error
from sla_bot.outbox import DeliveryError

TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def classify(exc: Exception, result: Mapping[str, Any] | None) -> DeliveryError:
    """A Slack failure as a DeliveryError: permanent unless retrying can help (and counted)."""
    error = _classify(exc, result)
    api_error("slack", transient=not error.permanent)
    return error


def _classify(exc: Exception, result: Mapping[str, Any] | None) -> DeliveryError:
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        code = exc.response.get("error") or f"http_{status}"
        if rate_limited(exc):
            seconds = retry_after_of(exc)
            return DeliveryError("ratelimited", permanent=False, retry_after=seconds, result=result)
        permanent = status < 500 and code not in TRANSIENT_ERRORS
        return DeliveryError(f"slack error: {code}", permanent=permanent, result=result)
    return DeliveryError(f"slack unreachable: {exc!r}", permanent=False, result=result)


def rate_limited(exc: Exception) -> bool:
    """Slack refused the call for its rate limit: it was not carried out."""
    if not isinstance(exc, SlackApiError):
        return False
    return exc.response.status_code == 429 or exc.response.get("error") == "ratelimited"


def retry_after_of(exc: Exception) -> float:
    """Seconds Slack asked to wait (Retry-After), 1 when it did not say."""
    if not isinstance(exc, SlackApiError):
        return 1.0
    headers = exc.response.headers
    after = str(headers.get("Retry-After") or headers.get("retry-after") or "1")
    digits = after.replace(".", "", 1)
    return float(after) if digits.isascii() and digits.isdigit() else 1.0


def error_code(exc: Exception) -> str | None:
    return exc.response.get("error") if isinstance(exc, SlackApiError) else None


def ambiguous(exc: Exception) -> bool:
    """Did the request possibly reach Slack and take effect?"""
    if isinstance(exc, SlackApiError):
        return exc.response.status_code >= 500
    return isinstance(exc, OSError | HTTPException)
