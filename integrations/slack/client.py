"""WebClient factory: slack_sdk's retry handlers, with bounded, injectable sleeps.

The built-in handlers sleep in the calling thread (`time.sleep`), for as long as Retry-After
says. Here every wait goes through `sleep` (tests pass a recording fake) and is capped by
`max_wait`: a longer Retry-After is not waited for in-thread; the SlackApiError reaches the
deliverer, which reschedules the outbox row for later.

Retrying a call that Slack may already have carried out (a 5xx or timeout on chat.postMessage)
could post twice, so those are *not* retried here: the deliverer first checks the conversation
for the message (by metadata) and only then posts again. A 429, or a connection that was
refused, never reached Slack and is always safe to retry.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

Sleep = Callable[[float], None]
# Calls whose effect is not idempotent: an ambiguous failure must not be blindly retried.
NOT_IDEMPOTENT = frozenset(
    {"chat.postMessage", "chat.postEphemeral", "files.completeUploadExternal"}
)


def api_method(request: HttpRequest) -> str:
    return request.url.rstrip("/").rsplit("/", 1)[-1]


def retry_after(response: HttpResponse | None) -> float | None:
    """Retry-After in seconds from a 429 response, if present and numeric."""
    if response is None:
        return None
    for key, values in response.headers.items():
        if key.lower() == "retry-after":
            value = values[0] if isinstance(values, list) else values
            try:
                return float(value)
            except (TypeError, ValueError):
                return None
    return None


class _Waits:
    """Exponential backoff with jitter, capped, through an injected sleep."""

    def __init__(self, sleep: Sleep, max_wait: float, base: float = 0.5) -> None:
        self.sleep, self.max_wait, self.base = sleep, max_wait, base

    def backoff(self, attempt: int) -> float:
        return min(self.max_wait, self.base * 2**attempt * (0.5 + random.random() / 2))


_paced = threading.local()


@contextmanager
def paced_call() -> Iterator[None]:
    """Calls made inside are not retried in place on a 429: the caller takes a new pacing slot.

    A paced conversation posts at Slack's limit, so a refused post that simply waits out
    Retry-After and goes again lands on top of the next slot's post, which is refused in turn:
    one late post becomes a chain of 429s. The sync WebClient runs its retry handlers in the
    calling thread, so a thread-local flag reaches them.
    """
    before = getattr(_paced, "on", False)
    _paced.on = True
    try:
        yield
    finally:
        _paced.on = before


class RateLimitRetry(RateLimitErrorRetryHandler):
    """429: wait Retry-After (+ jitter) if it is short enough, else give up to the caller
    (always, inside `paced_call`)."""

    def __init__(self, waits: _Waits, max_retry_count: int) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.waits = waits

    def _can_retry(self, *, state: RetryState, request: HttpRequest, **kw: Any) -> bool:
        response = kw.get("response")
        if response is None or response.status_code != 429 or getattr(_paced, "on", False):
            return False
        return (retry_after(response) or 1.0) <= self.waits.max_wait

    def prepare_for_next_attempt(self, *, state: RetryState, **kw: Any) -> None:
        state.next_attempt_requested = True
        self.waits.sleep((retry_after(kw.get("response")) or 1.0) + random.random() / 4)
        state.increment_current_attempt()


class ServerErrorRetry(ServerErrorRetryHandler):
    """5xx on calls that are safe to repeat (update, open, lookups, history)."""

    def __init__(self, waits: _Waits, max_retry_count: int) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.waits = waits

    def _can_retry(self, *, state: RetryState, request: HttpRequest, **kw: Any) -> bool:
        response = kw.get("response")
        return (
            response is not None
            and response.status_code >= 500
            and api_method(request) not in NOT_IDEMPOTENT
        )

    def prepare_for_next_attempt(self, *, state: RetryState, **kw: Any) -> None:
        state.next_attempt_requested = True
        self.waits.sleep(self.waits.backoff(state.current_attempt))
        state.increment_current_attempt()


class ConnectionRetry(ConnectionErrorRetryHandler):
    """Connection errors and timeouts on idempotent calls; refused connections on any call."""

    def __init__(self, waits: _Waits, max_retry_count: int) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.error_types_to_do_retries = [*self.error_types_to_do_retries, TimeoutError]
        self.waits = waits

    def _can_retry(self, *, state: RetryState, request: HttpRequest, **kw: Any) -> bool:
        error = kw.get("error")
        if not super()._can_retry(state=state, request=request, **kw):
            return False
        if api_method(request) not in NOT_IDEMPOTENT:
            return True
        reason = error.reason if isinstance(error, URLError) else None
        return isinstance(reason, ConnectionRefusedError)  # never reached Slack

    def prepare_for_next_attempt(self, *, state: RetryState, **kw: Any) -> None:
        state.next_attempt_requested = True
        self.waits.sleep(self.waits.backoff(state.current_attempt))
        state.increment_current_attempt()


def make_client(
    token: str,
    base_url: str = "https://slack.com/api/",
    *,
    timeout: float = 10.0,
    sleep: Sleep = time.sleep,
    max_wait: float = 5.0,
    max_retries: int = 3,
) -> WebClient:
    """A WebClient that retries 429s, 5xx and connection errors safely and boundedly."""
    waits = _Waits(sleep, max_wait)
    handlers = [
        RateLimitRetry(waits, max_retries),
        ServerErrorRetry(waits, max_retries),
        ConnectionRetry(waits, max_retries),
    ]
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,  # type: ignore[arg-type]  # urllib takes float seconds
        retry_handlers=handlers,  # type: ignore[arg-type]
    )
