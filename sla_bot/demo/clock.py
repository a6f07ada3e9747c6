"""The demo's clock: wall time, optionally running N times faster. Exists only in the demo."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

MAX_SPEED = 600.0  # signed requests are valid 5 demo minutes: 0.5 s of real time at 600x


class SpeedClock:
    """Demo time: `start` at wall time `origin`, then `speed` demo seconds per real second.

    Every demo process builds the same clock from the same three numbers, so the web
    processes, the worker, the fakes and the demo page agree on what time it is.
    """

    def __init__(
        self, speed: float = 1.0, *, origin: float | None = None, start: datetime | None = None
    ) -> None:
        if not 1.0 <= speed <= MAX_SPEED:
            raise ValueError(f"speed must be between 1 and {MAX_SPEED:g}")
        self.speed = speed
        self.origin = time.time() if origin is None else origin
        self.start = (start or datetime.fromtimestamp(self.origin, UTC)).astimezone(UTC)

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.time() - self.origin) * self.speed)

    def timestamp(self) -> float:
        """Demo time as epoch seconds (Slack timestamps, signatures)."""
        return self.now().timestamp()

    def real_seconds(self, until: datetime) -> float:
        """How many wall seconds until demo time reaches `until`."""
        return (until - self.now()).total_seconds() / self.speed

    def argv(self) -> list[str]:
        """The arguments that rebuild this clock in another process."""
        return [
            "--speed",
            repr(self.speed),
            "--origin",
            repr(self.origin),
            "--start",
            self.start.isoformat(),
        ]

    @classmethod
    def from_args(cls, speed: float, origin: float, start: str) -> SpeedClock:
        return cls(speed, origin=origin, start=datetime.fromisoformat(start))
