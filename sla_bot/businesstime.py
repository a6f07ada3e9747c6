"""Business-time arithmetic: which instants count toward an SLA, and how to add and measure them.

Windows are local wall time; each date's windows are converted to UTC once (cached), so all the
arithmetic is plain UTC interval arithmetic, exact across DST. One rule maps a window boundary
(start or end alike) to an instant: the first instant the local clock reads that time or later.
* fall back: a repeated wall time means its first occurrence (fold=0); a window covering the whole
  repeated hour counts it twice, as that is real time worked;
* spring forward: a nonexistent wall time means the instant the clock jumps, so 01:00-03:00 on
  the New York spring-forward day is one real hour (02:00-02:30 is no time at all).
The mapping is monotonic, so windows that do not overlap locally do not overlap in UTC, and
adjacent ones (00:00-01:30 + 01:30-03:00) stay adjacent. A window end of None means 24:00.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sla_bot.durations import Duration

Interval = tuple[datetime, datetime]
ONE_DAY = timedelta(days=1)
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# How far past the last holiday/closure/open date to look before deciding the calendar's weekly
# pattern will never open (or never close) again: two full weeks covers every weekday twice.
_HORIZON = timedelta(days=14)
_CACHE_MAX = 4096


class CalendarError(ValueError):
    """A calendar definition that cannot be used, or a question it cannot answer."""


@dataclass(frozen=True)
class Window:
    """One open period [start, end) of local wall time. end=None (or time(0, 0)) means 24:00."""

    start: time
    end: time | None = None

    def __post_init__(self) -> None:
        if self.end == time(0):
            object.__setattr__(self, "end", None)

    @classmethod
    def parse(cls, text: str) -> Window:
        """Read "09:00-17:00" ("24:00" allowed as an end) so configs stay human-readable."""
        try:
            start, end = (part.strip() for part in text.split("-"))
            return cls(
                time.fromisoformat(start), None if end == "24:00" else time.fromisoformat(end)
            )
        except ValueError as exc:
            hint = 'expected e.g. "09:00-17:00" or "18:00-24:00"'
            raise CalendarError(f'bad window "{text}": {hint}') from exc

    def seconds(self) -> int:
        """Nominal length in local hours (DST ignored): what the schedule promises."""
        return (86400 if self.end is None else _sec(self.end)) - _sec(self.start)

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{'24:00' if self.end is None else _hhmm(self.end)}"


class BusinessCalendar:
    """Open hours of a team or rep: weekly windows, holidays, extra closures, extra open dates.

    Precedence for a date: closed ranges > open_dates > holidays > weekly. A closure (say a rep's
    out-of-office) beats an extra open date because it is the more specific statement.
    """

    def __init__(
        self,
        *,
        tz: str | ZoneInfo,
        weekly: Mapping[int, Sequence[Window]],
        holidays: Mapping[date, str] | None = None,
        closed: Iterable[tuple[date, date]] = (),
        open_dates: Mapping[date, Sequence[Window]] | None = None,
        business_day: timedelta | None = None,
        name: str = "",
    ) -> None:
        self.tz: ZoneInfo = _zone(tz)
        self.name = name
        self._weekly = {day: tuple(ws) for day, ws in weekly.items()}
        self._holidays = dict(holidays or {})
        self._closed_raw = tuple(tuple(r) for r in closed)
        self._open_dates = {d: tuple(ws) for d, ws in (open_dates or {}).items()}
        self._business_day = business_day
        self.validate()
        self._weekly = {d: _sorted(ws) for d, ws in self._weekly.items() if ws}
        self._open_dates = {d: _sorted(ws) for d, ws in self._open_dates.items()}
        self._closed = _merge_ranges(self._closed_raw)
        self._closed_starts = [start for start, _ in self._closed]
        self.business_day_seconds: int = self._default_business_day()
        specials = [*self._holidays, *self._open_dates, *(end for _, end in self._closed)]
        self._last_special = max(specials, default=date.min)
        self._cache: dict[date, tuple[Interval, ...]] = {}

    def __repr__(self) -> str:
        return f"BusinessCalendar(name={self.name!r}, tz={self.tz.key!r})"

    def validate(self) -> None:
        """Refuse definitions that would mis-count: overlaps, midnight-crossing, no hours."""
        for day, windows in self._weekly.items():
            if not isinstance(day, int) or not 0 <= day <= 6:
                raise CalendarError(f"weekday {day!r} must be 0 (Monday) .. 6 (Sunday)")
            _check_windows(DAY_NAMES[day], windows, DAY_NAMES[(day + 1) % 7])
        for day, windows in self._open_dates.items():
            _check_date(day, "open date")
            if not windows:
                raise CalendarError(f"open date {day} has no windows; close dates with `closed`")
            _check_windows(str(day), windows, str(day + ONE_DAY))
        for day in self._holidays:
            _check_date(day, "holiday")
        for rng in self._closed_raw:
            if len(rng) != 2 or _check_date(rng[0], "closed from") > _check_date(rng[1], "to"):
                raise CalendarError(f"closed range {rng!r} must be (first, last) dates, in order")
        if not any(self._weekly.values()) and not self._open_dates:
            raise CalendarError(f"calendar {self.name!r} has no open time: give a weekday a window")
        bday = self._business_day
        if bday is not None and (not isinstance(bday, timedelta) or bday <= timedelta(0)):
            raise CalendarError(f"business_day must be a positive timedelta, got {bday!r}")

    def with_timezone(self, tz: str | ZoneInfo) -> BusinessCalendar:
        """Same local hours in another zone, e.g. for a rep who works 9-5 where they live."""
        return self._replace(tz=tz)

    def with_closed(self, ranges: Iterable[tuple[date, date]]) -> BusinessCalendar:
        """Add inclusive closed date ranges, e.g. a rep's out-of-office."""
        return self._replace(closed=[*self._closed_raw, *ranges])

    def is_open(self, t: datetime) -> bool:
        """Whether t counts as business time (a window's start is open, its end is not)."""
        t = _utc(t)
        first = next(self._intervals_from(t), None)
        return first is not None and first[0] <= t

    def next_open(self, t: datetime) -> datetime:
        """t itself if open, else the start of the next open period (UTC)."""
        t = _utc(t)
        first = next(self._intervals_from(t), None)
        if first is None:
            raise CalendarError(f"calendar {self.name!r} has no open time after {t.isoformat()}")
        return max(first[0], t)

    def next_close(self, t: datetime) -> datetime:
        """The first closed instant at or after t: t itself if closed, else the end of this period.

        Raises CalendarError if the calendar never closes again (24/7 with no closures ahead).
        """
        t = _utc(t)
        if not self.is_open(t):
            return t
        # Open without a break for two weeks past the last special date: the weekly pattern is 24/7.
        limit = datetime.combine(max(t.date(), self._last_special) + _HORIZON, time(), UTC)
        end = t
        for start, stop in self._intervals_from(t):
            if start > end:
                return end
            if start > limit:
                raise CalendarError(f"calendar {self.name!r} never closes after {t.isoformat()}")
            end = stop
        return end  # open time ran out for good

    def add(self, start: datetime, d: Duration | timedelta) -> datetime:
        """start + d: wall durations add plainly in UTC; business durations count open time only.

        Counting starts at the next opening if start is closed, and a count ending exactly at a
        close returns that close instant (not the next opening).
        """
        start = _utc(start)
        if isinstance(d, timedelta):
            return start + d
        if not d.business:
            return start + d.as_timedelta()
        return self.add_open(start, timedelta(seconds=d.business_seconds(self)))

    def add_open(self, start: datetime, left: timedelta) -> datetime:
        """The instant when `left` of open time has been counted from `start` (business add
        with sub-second precision, for remainders that are differences of instants)."""
        start = _utc(start)
        if left < timedelta(0):
            raise ValueError(f"negative business duration {left}")
        if not left:
            return self.next_open(start)
        for open_, close in self._intervals_from(start):
            open_ = max(open_, start)
            if left <= close - open_:
                return open_ + left
            left -= close - open_
        raise CalendarError(
            f"calendar {self.name!r} runs out of open time before {left} is counted"
        )

    def elapsed(self, a: datetime, b: datetime) -> timedelta:
        """Open time in [a, b); zero if b <= a."""
        a, b = _utc(a), _utc(b)
        total = timedelta(0)
        if b <= a:
            return total
        for open_, close in self._intervals_from(a):
            if open_ >= b:
                break
            total += min(close, b) - max(open_, a)
        return total

    def open_periods(self, start: datetime, end: datetime) -> Iterator[Interval]:
        """Maximal open UTC intervals clipped to [start, end); adjacent windows come out merged."""
        return self._periods(_utc(start), _utc(end))

    def describe_closure(self, d: date) -> str | None:
        """Why a date has no scheduled hours ("holiday: X", "closed", ...), or None if it has."""
        d = _utc(d).astimezone(self.tz).date() if isinstance(d, datetime) else d
        if self._closed_until(d):
            return "closed"
        if d in self._open_dates:
            return None
        if d in self._holidays:
            return f"holiday: {self._holidays[d]}"
        return None if self._weekly.get(d.weekday()) else f"closed on {DAY_NAMES[d.weekday()]}s"

    # --- internals ---------------------------------------------------------------------------

    def _replace(self, **changes: object) -> BusinessCalendar:
        args = dict(tz=self.tz, weekly=self._weekly, holidays=self._holidays, name=self.name)
        args |= dict(closed=self._closed_raw, open_dates=self._open_dates)
        args |= dict(business_day=self._business_day) | changes
        return BusinessCalendar(**args)  # type: ignore[arg-type]

    def _default_business_day(self) -> int:
        """Explicit business_day, else the longest scheduled day: "1 business day" = a full day."""
        if self._business_day is not None:
            return int(self._business_day.total_seconds())
        days = self._weekly.values() if self._weekly else self._open_dates.values()
        return max(sum(w.seconds() for w in windows) for windows in days)

    def _periods(self, start: datetime, end: datetime) -> Iterator[Interval]:
        run: Interval | None = None
        for open_, close in self._intervals_from(start):
            if open_ >= end or start >= end:
                break
            open_, close = max(open_, start), min(close, end)
            if run and run[1] == open_:
                run = (run[0], close)
                continue
            if run:
                yield run
            run = (open_, close)
        if run:
            yield run

    def _intervals_from(self, t: datetime) -> Iterator[Interval]:
        """Per-date open UTC intervals ending after t, in order; ends only if open time runs out."""
        day = t.astimezone(self.tz).date() - ONE_DAY  # the day before: its hours may reach past t
        give_up = max(day, self._last_special) + _HORIZON
        while self._weekly or day <= give_up:
            skip_to = self._closed_until(day)
            if skip_to is None:
                for interval in self._day_intervals(day):
                    if interval[1] > t:
                        yield interval
            day = skip_to or day
            if day == date.max:
                return
            day += ONE_DAY

    def _closed_until(self, day: date) -> date | None:
        """Last day of the closed range containing day (bisect: ranges are merged and sorted)."""
        i = bisect.bisect_right(self._closed_starts, day) - 1
        return self._closed[i][1] if i >= 0 and self._closed[i][1] >= day else None

    def _windows_on(self, day: date) -> tuple[Window, ...]:
        if day in self._open_dates:
            return self._open_dates[day]
        return () if day in self._holidays else self._weekly.get(day.weekday(), ())

    def _day_intervals(self, day: date) -> tuple[Interval, ...]:
        """One local date's windows in UTC (gap-swallowed windows dropped), cached per date."""
        cached = self._cache.get(day)
        if cached is None:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            out: list[Interval] = []
            for w in self._windows_on(day):
                start, end = self._to_utc(day, w.start), self._to_utc(day, w.end)
                if end <= start:
                    continue
                if out and out[-1][1] == start:
                    out[-1] = (out[-1][0], end)
                else:
                    out.append((start, end))
            cached = self._cache[day] = tuple(out)
        return cached

    def _to_utc(self, day: date, wall: time | None) -> datetime:
        """Local wall time on day -> UTC; None is 24:00. Folds -> first occurrence, gaps -> jump."""
        if wall is None:
            day, wall = day + ONE_DAY, time(0)
        naive = datetime.combine(day, wall)
        local = naive.replace(tzinfo=self.tz)
        before, after = local.utcoffset(), local.replace(fold=1).utcoffset()
        assert before is not None and after is not None
        if after <= before:  # unambiguous, or repeated: fold=0 is the first occurrence
            return (naive - before).replace(tzinfo=UTC)
        return self._jump(naive - after, naive - before)

    def _jump(self, lo: datetime, hi: datetime) -> datetime:
        """The instant the clock jumps over a gap: the offset changes in (lo, hi] (naive UTC)."""
        lo_s = math.floor(lo.replace(tzinfo=UTC).timestamp())
        hi_s = math.ceil(hi.replace(tzinfo=UTC).timestamp())
        old = self._offset_at(lo_s)
        while hi_s - lo_s > 1:
            mid = (lo_s + hi_s) // 2
            lo_s, hi_s = (mid, hi_s) if self._offset_at(mid) == old else (lo_s, mid)
        return datetime.fromtimestamp(hi_s, UTC)

    def _offset_at(self, timestamp: int) -> timedelta | None:
        return datetime.fromtimestamp(timestamp, self.tz).utcoffset()


def _utc(t: datetime) -> datetime:
    """Aware -> UTC; naive datetimes are refused because guessing their zone mis-counts SLAs."""
    if not isinstance(t, datetime):
        raise TypeError(f"expected a datetime, got {type(t).__name__}")
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"naive datetime {t.isoformat()}: pass an aware one (e.g. tzinfo=UTC)")
    return t.astimezone(UTC)


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    if isinstance(tz, ZoneInfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise CalendarError(f"unknown time zone {tz!r}: expected e.g. 'America/New_York'") from exc


def _check_date(d: object, what: str) -> date:
    if isinstance(d, datetime) or not isinstance(d, date):
        raise CalendarError(f"{what} {d!r} must be a date (not a datetime)")
    return d


def _check_windows(label: str, windows: Sequence[Window], next_label: str) -> None:
    """Each window non-empty and within one day; windows on a day may touch but not overlap."""
    for w in windows:
        if not (
            isinstance(w, Window) and isinstance(w.start, time) and isinstance(w.end, time | None)
        ):
            raise CalendarError(f"{label}: {w!r} is not a Window(start: time, end: time | None)")
        if w.start.tzinfo is not None or (w.end is not None and w.end.tzinfo is not None):
            raise CalendarError(f"{label} window {w}: times are local wall time, drop the tzinfo")
        if w.end is not None and w.end < w.start:
            raise CalendarError(
                f"{label} window {w} crosses midnight, which is not supported: split it into "
                f"{Window(w.start)} on {label} and {Window(time(0), w.end)} on {next_label}"
            )
        if w.end == w.start:
            raise CalendarError(f"{label} window {w} is empty: end must be after start")
    ordered = _sorted(windows)
    for prev, cur in zip(ordered, ordered[1:], strict=False):
        if prev.end is None or cur.start < prev.end:
            raise CalendarError(f"{label} windows {prev} and {cur} overlap")


def _sorted(windows: Iterable[Window]) -> tuple[Window, ...]:
    return tuple(sorted(windows, key=lambda w: w.start))


def _merge_ranges(ranges: Iterable[tuple[date, ...]]) -> list[tuple[date, date]]:
    """Sort and merge overlapping/adjacent closed ranges so one bisect answers "is it closed"."""
    merged: list[tuple[date, date]] = []
    for start, end in sorted((r[0], r[1]) for r in ranges):
        if merged and (start - merged[-1][1]).days <= 1:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _sec(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _hhmm(t: time) -> str:
    return t.strftime("%H:%M") if not (t.second or t.microsecond) else t.isoformat()
