"""Client-side, thread-safe sliding-window rate limiter.

HubSpot enforces a rolling window (``TEN_SECONDLY_ROLLING``: 100-190 requests per 10 s per private
app, 110 per account for OAuth apps) and a separate search limit (5/s). Staying under it on our
side is far cheaper than eating 429s, which also count toward HubSpot's 5 % error budget.

The limiter keeps the grant times of the last ``max_calls`` requests. A new request is granted
when fewer than ``max_calls`` grants fall in ``(now - window, now]``; otherwise the caller sleeps
until the oldest grant leaves the window. Time and sleep are injected, so tests drive it with a
manual clock and never sleep for real. **If you inject a no-op sleep, inject a monotonic clock
that the sleep advances** (see :class:`integrations.hubspot.fake.ManualClock`), or waits spin.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol


class RateLimiter(Protocol):
    """What the retry loop needs from a budget: a grant before each request, its release after
    the response (a shared budget holds the slot until then), and a pause after a 429."""

    def acquire(self) -> Any: ...

    def release(self, grant: Any) -> None: ...

    def pause(self, seconds: float) -> None: ...


class SlidingWindowRateLimiter:
    """At most ``max_calls`` grants in any ``window`` seconds, across all threads."""

    def __init__(
        self,
        max_calls: int,
        window: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        name: str = "hubspot",
    ) -> None:
        if max_calls < 1 or window <= 0:
            raise ValueError("rate limit needs max_calls >= 1 and window > 0")
        self.max_calls = max_calls
        self.window = float(window)
        self.name = name
        self._monotonic = monotonic
        self._sleep = sleep
        self._grants: deque[float] = deque()
        self._paused_until = float("-inf")
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Block until a request may be sent; return the (monotonic) time it was granted."""
        while True:
            with self._lock:
                now = self._monotonic()
                grants = self._grants
                while grants and grants[0] + self.window <= now:
                    grants.popleft()
                if now < self._paused_until:
                    wait = self._paused_until - now
                elif len(grants) < self.max_calls:
                    grants.append(now)
                    return now
                else:
                    wait = grants[0] + self.window - now
            self._sleep(wait)

    def release(self, grant: Any) -> None:
        """Nothing to do: this budget counts grants, not responses."""

    def pause(self, seconds: float) -> None:
        """Hold back every caller for ``seconds`` (used after HubSpot answers 429)."""
        if seconds <= 0:
            return
        with self._lock:
            self._paused_until = max(self._paused_until, self._monotonic() + seconds)

    def in_window(self) -> int:
        """How many grants the current window holds (for metrics and tests)."""
        with self._lock:
            now = self._monotonic()
            return sum(1 for t in self._grants if t + self.window > now)
