"""Our own retry loop around each HubSpot request.

Why not urllib3 ``Retry``: it skips POST/PATCH by default (batch read, search, create, update),
raises ``MaxRetryError`` instead of the HTTP error when exhausted, cannot tell an ambiguous 5xx on
a create from a safe one, and cannot be driven by an injected sleep in tests. The SDK clients are
therefore built with ``retry=False`` (one attempt per call, raw exceptions) and this loop does:

* every attempt first takes a slot from the rate limiter;
* a permanent error (4xx other than 408/423/429, unknown response) is raised at once;
* a transient error is retried up to ``max_retries`` times (``max_retries + 1`` attempts), then
  raised as :class:`TransientHubSpotError` with ``attempts`` set;
* delay: ``Retry-After`` (seconds or HTTP-date) when present, exactly; else "full jitter"
  ``uniform(0, min(cap, base * 2**retry))``; a 429 without ``Retry-After`` waits at least 1 s
  (HubSpot's secondly/rolling windows free up within that); a 429 also pauses the limiter so
  other threads back off too;
* a 429 with ``policyName == "DAILY"``, or a ``Retry-After`` beyond ``max_retry_after``, is not
  retried inline: it is raised (transient, with ``retry_after``) for the caller to reschedule;
* a 401 with a renewable token (OAuth): ``auth.renew(stale)`` once, then the same attempt again;
* a 429 with the daily limit exhausted is reported to ``on_daily_limit`` (the portal pauses);
* ``resend_ambiguous=False`` (creates): an ambiguous failure (5xx, timeout, dropped connection:
  the object may exist) is raised at once, never re-sent inline. HubSpot's search index lags
  writes by seconds, so a search a moment later cannot tell; the outbox retries the row after
  ``INDEX_LAG`` and searches first (:mod:`integrations.hubspot.writeback`);
* ``fence`` runs after the rate limiter granted the attempt and right before the request (the
  outbox's lease check); whatever it raises propagates unchanged and nothing is sent.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from integrations.hubspot.errors import HubSpotError, TransientHubSpotError, classify
from integrations.hubspot.ratelimit import RateLimiter
from sla_bot.metrics_store import api_error

T = TypeVar("T")
log = logging.getLogger("integrations.hubspot")

MIN_429_DELAY = 1.0


class TokenSource(Protocol):
    """Where the access token comes from when it can change (OAuth: refreshed before expiry)."""

    def current(self) -> str:
        """A token valid now (refreshing it first if it is about to expire)."""
        ...

    def renew(self, stale: str) -> bool:
        """HubSpot refused `stale`: get a fresh token; False if none can be had (revoked)."""
        ...


class _Fenced(BaseException):
    """Carries the fence's exception past the classification of API errors."""

    def __init__(self, inner: BaseException) -> None:
        self.inner = inner


def is_daily_limit(err: HubSpotError) -> bool:
    return err.status == 429 and (err.policy_name or "").upper() == "DAILY"


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_retry_after: float = 60.0

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Full jitter: uniform(0, min(cap, base * 2**retry)), retry counting from 0."""
        return rng.uniform(0.0, min(self.backoff_cap, self.backoff_base * (2.0**retry)))


class Retrier:
    def __init__(
        self,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], None],
        rng: random.Random | None = None,
        authorize: Callable[[], str | None] | None = None,
        renew: Callable[[str], bool] | None = None,
        on_daily_limit: Callable[[HubSpotError], None] | None = None,
    ) -> None:
        self.policy = policy
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._authorize = authorize  # sets the current token on the SDK; returns it
        self._renew = renew
        self._on_daily_limit = on_daily_limit

    def call(
        self,
        operation: str,
        fn: Callable[[], T],
        *,
        limiter: RateLimiter,
        resend_ambiguous: bool = True,
        fence: Callable[[], object] | None = None,
    ) -> T:
        retry = 0
        renewed = False
        while True:
            token: str | None = None
            try:
                if self._authorize is not None:
                    token = self._authorize()
                grant = limiter.acquire()
                try:
                    if fence is not None:
                        try:
                            fence()
                        except Exception as stop:  # noqa: BLE001 - not an API error: re-raised
                            raise _Fenced(stop) from stop
                    return fn()
                finally:
                    limiter.release(grant)
            except _Fenced as fenced:
                raise fenced.inner from None
            except Exception as exc:  # noqa: BLE001 - classified below, chained on raise
                err = classify(exc, operation=operation)
                err.attempts = retry + 1
                api_error("hubspot", transient=err.transient)
                cause: BaseException = exc
            if err.status == 401 and token and self._renew is not None and not renewed:
                renewed = True  # once: a fresh token that is refused too is a real 401
                if self._renew(token):
                    continue
            if is_daily_limit(err) and self._on_daily_limit is not None:
                self._on_daily_limit(err)
            if not err.transient or (err.ambiguous and not resend_ambiguous):
                raise err from cause
            delay = self._delay(err, retry)
            if delay is None or retry >= self.policy.max_retries:
                raise err from cause
            if err.status == 429:
                limiter.pause(delay)
            log.warning(
                "hubspot %s failed (status=%s category=%s correlationId=%s); retry %d/%d in %.2fs",
                operation,
                err.status,
                err.category,
                err.correlation_id,
                retry + 1,
                self.policy.max_retries,
                delay,
            )
            self._sleep(delay)
            retry += 1

    def _delay(self, err: HubSpotError, retry: int) -> float | None:
        """Seconds to wait before the next attempt, or None to give up now."""
        if is_daily_limit(err):
            return None
        if err.retry_after is not None:
            if err.retry_after > self.policy.max_retry_after:
                return None
            return err.retry_after
        delay = self.policy.backoff(retry, self._rng)
        if err.status == 429:
            delay = max(delay, MIN_429_DELAY)
        return delay


__all__ = ["RetryPolicy", "Retrier", "TransientHubSpotError"]
