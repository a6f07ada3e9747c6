"""Deadline arithmetic that skips held time: the SLA clock stands still while a lead is held.

A pause, a stop that later clears, or a disqualification that is undone holds the lead. Every
deadline still ahead when a hold starts moves later by the time the hold took (counted on the
lead's calendar for business durations, on the wall clock for wall durations), so when the hold
ends the ladder and the cadence resume from where they stood: nothing that "fell due" while
held fires in a burst. Steps due before the hold started are not moved.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sla_bot.businesstime import BusinessCalendar
from sla_bot.durations import Duration

Span = tuple[datetime, datetime]


class HeldTime:
    """A calendar with some closed spans on top (sorted, non-overlapping, all ended)."""

    def __init__(self, calendar: BusinessCalendar, holds: Sequence[Span] = ()) -> None:
        self.cal = calendar
        self.holds = sorted(holds)

    def add(self, t: datetime, d: Duration | timedelta) -> datetime:
        """t + d, counting neither closed calendar time (business d) nor held spans."""
        business = isinstance(d, Duration) and d.business
        if not self.holds:
            return self.cal.add(t, d)
        if isinstance(d, Duration):
            left = timedelta(seconds=d.business_seconds(self.cal)) if business else d.as_timedelta()
        else:
            left = d
        for start, end in self.holds:
            if end <= t:
                continue
            if start <= t:  # counting starts inside a hold: from its end
                t = end
                continue
            reached = self._count(t, left, business)
            if reached < start:  # a deadline at the very instant a hold starts is held too
                return reached
            left -= self._measure(t, start, business)
            t = end
        return self._count(t, left, business)

    def elapsed(self, a: datetime, b: datetime, *, business: bool) -> timedelta:
        """Counted time in [a, b): open time (business) or wall time, minus held spans."""
        total = self._measure(a, b, business)
        for start, end in self.holds:
            lo, hi = max(a, start), min(b, end)
            if lo < hi:
                total -= self._measure(lo, hi, business)
        return total

    def _count(self, t: datetime, left: timedelta, business: bool) -> datetime:
        return self.cal.add_open(t, left) if business else t + left

    def _measure(self, a: datetime, b: datetime, business: bool) -> timedelta:
        if b <= a:
            return timedelta(0)
        return self.cal.elapsed(a, b) if business else b - a
