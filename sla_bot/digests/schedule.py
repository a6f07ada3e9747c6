"""When a weekly digest is due (pure): its day and local time in a calendar, holidays handled.

A digest covers the last full week before the week it is sent in: Monday 00:00 to Monday 00:00
in the calendar's zone. If the scheduled day is closed in the calendar (a holiday, a closed date,
a day without hours), it goes out on the next open day at the same local time, or not at all
that week (`on_holiday: skip`). A worker that was down at the due time still sends it if it is
back within LATE_LIMIT; later than that the week is skipped rather than sent days late.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sla_bot.businesstime import BusinessCalendar
from sla_bot.reports.facts import week_start
from sla_bot.rules.digests import Weekly

LATE_LIMIT = timedelta(hours=12)
MAX_MOVE_DAYS = 14  # a calendar closed longer than this around a due day skips the week


@dataclass(frozen=True)
class Occurrence:
    """One period of a digest: the week it covers and when it goes out."""

    period: str  # ISO week of the covered week, e.g. 2026-W45
    since: datetime  # UTC: Monday 00:00 local of the covered week
    until: datetime  # UTC: Monday 00:00 local of the week it is sent in
    previous_since: datetime  # UTC: the week before, for "against last week"
    due_at: datetime  # UTC
    moved: str | None = None  # why it is not on the scheduled day (e.g. "holiday: X")


def _send_day(cal: BusinessCalendar, day: date, on_holiday: str) -> tuple[date, str | None] | None:
    closed = cal.describe_closure(day)
    if closed is None:
        return day, None
    if on_holiday == "skip":
        return None
    for n in range(1, MAX_MOVE_DAYS + 1):
        if cal.describe_closure(day + timedelta(days=n)) is None:
            return day + timedelta(days=n), closed
    return None


def week_of(
    every: Weekly, cal: BusinessCalendar, on_holiday: str, monday: date
) -> Occurrence | None:
    """The digest sent in the week starting `monday` (None: skipped for a holiday)."""
    found = _send_day(cal, monday + timedelta(days=every.weekday), on_holiday)
    if found is None:
        return None
    day, moved = found
    covered = monday - timedelta(days=7)
    year, week, _ = covered.isocalendar()
    tz = cal.tz
    return Occurrence(
        period=f"{year}-W{week:02d}",
        since=week_start(covered, tz),
        until=week_start(monday, tz),
        previous_since=week_start(covered - timedelta(days=7), tz),
        due_at=datetime.combine(day, every.at, tzinfo=tz).astimezone(UTC),
        moved=moved,
    )


def due(every: Weekly, cal: BusinessCalendar, on_holiday: str, now: datetime) -> Occurrence | None:
    """The occurrence to send at `now`: due at or before now, and not more than LATE_LIMIT ago."""
    local = now.astimezone(cal.tz).date()
    this_monday = local - timedelta(days=local.weekday())
    for weeks_back in (0, 1, 2):  # a holiday may move last week's digest into this week
        occ = week_of(every, cal, on_holiday, this_monday - timedelta(days=7 * weeks_back))
        if occ is not None and occ.due_at <= now < occ.due_at + LATE_LIMIT:
            return occ
    return None
