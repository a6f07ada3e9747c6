"""Business-time arithmetic: DST tables, holidays, split shifts, validation, and properties."""

from __future__ import annotations

import time as perf
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays as holiday_data
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sla_bot.businesstime import BusinessCalendar, CalendarError, Window
from sla_bot.durations import Duration, parse_duration

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
W = Window.parse
WEEKDAYS = range(5)
ALL_DAYS = range(7)

# Each zone with the dates its clocks change in 2026 (plus an ordinary day): scenarios pick a zone
# first, then cluster instants and windows around the change so the DST cases are actually hit.
ZONE_DAYS = {
    NY: [date(2026, 3, 8), date(2026, 11, 1)],
    LONDON: [date(2026, 3, 29), date(2026, 10, 25)],
    LORD_HOWE: [date(2026, 4, 5), date(2026, 10, 4)],
    ZoneInfo("Asia/Kolkata"): [date(2026, 7, 1)],
    ZoneInfo("UTC"): [date(2026, 7, 1)],
}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=zone, fold=fold)


def biz(text: str) -> Duration:
    return parse_duration(text)


def calendar(
    zone: ZoneInfo, days: range | tuple[int, ...], *windows: str, **kw
) -> BusinessCalendar:
    return BusinessCalendar(tz=zone, weekly={d: [W(w) for w in windows] for d in days}, **kw)


def periods(cal: BusinessCalendar, start: datetime, end: datetime) -> list[tuple[datetime, ...]]:
    return list(cal.open_periods(start, end))


# --- DST tables: one window on the change day, checked as exact UTC intervals -----------------

DST_CASES = [
    # New York spring forward, Sunday 2026-03-08: 02:00 EST -> 03:00 EDT (07:00Z).
    (NY, "2026-03-08", "00:00-06:00", utc(2026, 3, 8, 5), utc(2026, 3, 8, 10)),
    (NY, "2026-03-08", "01:00-03:00", utc(2026, 3, 8, 6), utc(2026, 3, 8, 7)),
    (NY, "2026-03-08", "01:30-02:30", utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7)),
    (NY, "2026-03-08", "02:30-04:00", utc(2026, 3, 8, 7), utc(2026, 3, 8, 8)),
    (NY, "2026-03-08", "02:00-02:30", None, None),  # entirely inside the gap: no open time
    # New York fall back, Sunday 2026-11-01: 02:00 EDT -> 01:00 EST (06:00Z); 01:xx repeats.
    (NY, "2026-11-01", "00:00-06:00", utc(2026, 11, 1, 4), utc(2026, 11, 1, 11)),
    (NY, "2026-11-01", "01:00-02:00", utc(2026, 11, 1, 5), utc(2026, 11, 1, 7)),
    (NY, "2026-11-01", "01:30-03:00", utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 8)),
    (NY, "2026-11-01", "00:00-01:30", utc(2026, 11, 1, 4), utc(2026, 11, 1, 5, 30)),
    (NY, "2026-11-01", "01:15-01:45", utc(2026, 11, 1, 5, 15), utc(2026, 11, 1, 5, 45)),
    # London spring forward 2026-03-29 01:00 GMT -> 02:00 BST; fall back 2026-10-25.
    (LONDON, "2026-03-29", "00:00-06:00", utc(2026, 3, 29, 0), utc(2026, 3, 29, 5)),
    (LONDON, "2026-03-29", "01:00-02:00", None, None),
    (LONDON, "2026-10-25", "00:00-06:00", utc(2026, 10, 24, 23), utc(2026, 10, 25, 6)),
    (LONDON, "2026-10-25", "01:00-02:00", utc(2026, 10, 25, 0), utc(2026, 10, 25, 2)),
    # Lord Howe shifts by 30 minutes: 02:00 -> 02:30 on 2026-10-04, 02:00 -> 01:30 on 2026-04-05.
    (LORD_HOWE, "2026-10-04", "00:00-06:00", utc(2026, 10, 3, 13, 30), utc(2026, 10, 3, 19)),
    (LORD_HOWE, "2026-04-05", "00:00-06:00", utc(2026, 4, 4, 13), utc(2026, 4, 4, 19, 30)),
]


@pytest.mark.parametrize(("zone", "day", "window", "start", "end"), DST_CASES)
def test_dst_day_windows_cover_real_time(
    zone: ZoneInfo, day: str, window: str, start: datetime | None, end: datetime | None
) -> None:
    d = date.fromisoformat(day)
    cal = calendar(zone, (d.weekday(),), window)
    around = (utc(d.year, d.month, d.day) - timedelta(days=1), utc(d.year, d.month, d.day, 23))
    expected = [] if start is None else [(start, end)]
    assert periods(cal, *around) == expected
    assert cal.elapsed(*around) == (timedelta(0) if start is None else end - start)


def test_dst_day_lengths_in_hours() -> None:
    """The headline numbers: 00:00-06:00 is 5 real hours in spring and 7 in autumn."""
    for zone, day, hours in [
        (NY, date(2026, 3, 8), 5),
        (NY, date(2026, 11, 1), 7),
        (LONDON, date(2026, 3, 29), 5),
        (LONDON, date(2026, 10, 25), 7),
        (LORD_HOWE, date(2026, 10, 4), 5.5),
        (LORD_HOWE, date(2026, 4, 5), 6.5),
    ]:
        cal = calendar(zone, ALL_DAYS, "00:00-06:00")
        start = datetime.combine(day, time(), zone)
        assert cal.elapsed(start, start + timedelta(hours=20)) == timedelta(hours=hours)


def _first_reading(zone: ZoneInfo, day: date, walls: list[time]) -> dict[time, datetime]:
    """Reference semantics by brute force: the first instant the local clock reads >= wall."""
    targets = [datetime.combine(day, w) for w in sorted(walls)]
    found: dict[time, datetime] = {}
    u = datetime.combine(day, time(), UTC) - timedelta(days=1)
    while len(found) < len(targets):
        reading = u.astimezone(zone).replace(tzinfo=None)
        while len(found) < len(targets) and reading >= targets[len(found)]:
            found[targets[len(found)].time()] = u
        u += timedelta(minutes=1)
    return found


@pytest.mark.parametrize(("zone", "day"), [(z, d) for z, ds in ZONE_DAYS.items() for d in ds])
def test_every_small_hours_window_on_dst_days(zone: ZoneInfo, day: date) -> None:
    """All 136 windows between 00:00 and 04:00 on quarter hours, against the brute force."""
    walls = [time(q // 4, q % 4 * 15) for q in range(17)]
    first = _first_reading(zone, day, walls)
    around = (first[walls[0]] - timedelta(hours=1), first[walls[-1]] + timedelta(hours=1))
    for i, start in enumerate(walls):
        for end in walls[i + 1 :]:
            cal = BusinessCalendar(tz=zone, weekly={day.weekday(): [Window(start, end)]})
            expected = [(first[start], first[end])] if first[start] < first[end] else []
            assert periods(cal, *around) == expected, (start, end)


def test_adjacent_windows_in_the_repeated_hour_stay_adjacent() -> None:
    cal = calendar(NY, (6,), "00:00-01:30", "01:30-03:00")
    assert periods(cal, utc(2026, 11, 1), utc(2026, 11, 2)) == [
        (utc(2026, 11, 1, 4), utc(2026, 11, 1, 8))
    ]


def test_add_across_spring_forward_skips_the_missing_hour() -> None:
    cal = calendar(NY, ALL_DAYS, "00:00-06:00")
    start = local(NY, 2026, 3, 8, 1, 30)
    assert cal.add(start, biz("1 business hour")) == local(NY, 2026, 3, 8, 3, 30)
    assert cal.add(local(NY, 2026, 3, 7, 5), biz("2 business hours")) == utc(2026, 3, 8, 6)


def test_add_across_fall_back_counts_the_repeated_hour() -> None:
    cal = calendar(NY, ALL_DAYS, "00:00-06:00")
    result = cal.add(local(NY, 2026, 11, 1, 1, 30), biz("1 business hour"))
    assert result == utc(2026, 11, 1, 6, 30)  # 01:30 EST, the second 01:30 of the night
    assert (result.astimezone(NY).time(), result.astimezone(NY).fold) == (time(1, 30), 1)


def test_office_hours_across_dst_weekend() -> None:
    cal = calendar(NY, WEEKDAYS, "08:00-18:00")
    start = local(NY, 2026, 3, 6, 17)  # Friday before spring forward, EST
    assert (
        cal.add(start, biz("2 business hours")) == local(NY, 2026, 3, 9, 9) == utc(2026, 3, 9, 13)
    )


# --- holidays, closures, split shifts ----------------------------------------------------------


def test_friday_evening_lead_skips_weekend_and_monday_holiday() -> None:
    cal = calendar(NY, WEEKDAYS, "08:00-18:00", holidays={date(2026, 1, 19): "MLK Day"})
    result = cal.add(local(NY, 2026, 1, 16, 17, 55), biz("30 business minutes"))
    assert result == local(NY, 2026, 1, 20, 8, 25)
    assert result.tzinfo is UTC


THANKSGIVING_WEEK = calendar(
    NY,
    WEEKDAYS,
    "09:00-18:00",
    holidays=dict(holiday_data.US(years=2026)),
    closed=[(date(2026, 11, 27), date(2026, 11, 27))],
)


def test_thanksgiving_week() -> None:
    cal = THANKSGIVING_WEEK
    wednesday = local(NY, 2026, 11, 25, 17)
    assert cal.add(wednesday, biz("2 business hours")) == local(NY, 2026, 11, 30, 10)
    assert cal.add(wednesday, biz("1 business day")) == local(NY, 2026, 11, 30, 17)
    assert cal.elapsed(wednesday, local(NY, 2026, 11, 30, 10)) == timedelta(hours=2)
    assert cal.next_open(local(NY, 2026, 11, 26, 10)) == local(NY, 2026, 11, 30, 9)


def test_describe_closure() -> None:
    cal = THANKSGIVING_WEEK
    assert cal.describe_closure(date(2026, 11, 26)) == "holiday: Thanksgiving Day"
    assert cal.describe_closure(date(2026, 11, 27)) == "closed"
    assert cal.describe_closure(date(2026, 11, 28)) == "closed on Saturdays"
    assert cal.describe_closure(date(2026, 11, 30)) is None
    assert cal.describe_closure(local(NY, 2026, 11, 26, 23)) == "holiday: Thanksgiving Day"


SPLIT = calendar(NY, WEEKDAYS, "09:00-12:00", "13:00-17:00")
ZERO = Duration(0, True, "minutes", 0, "0 business minutes")


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        ((11, 50), "30 business minutes", (13, 20)),
        ((11, 30), "30 business minutes", (12, 0)),  # ends exactly at the close: the close
        ((12, 30), "30 business minutes", (13, 30)),  # starts at lunch: counts from 13:00
        ((8, 0), "7 business hours", (17, 0)),
        ((16, 0), "2 business hours", (10, 0)),  # next day (Tuesday)
    ],
)
def test_split_shift_add(start: tuple[int, int], duration: str, expected: tuple[int, int]) -> None:
    monday = date(2026, 6, 1)
    result = SPLIT.add(datetime.combine(monday, time(*start), NY), biz(duration))
    day = monday if expected > start else monday + timedelta(days=1)
    assert result == datetime.combine(day, time(*expected), NY)


def test_split_shift_queries() -> None:
    at = lambda h, m=0: local(NY, 2026, 6, 1, h, m)  # noqa: E731
    assert SPLIT.add(at(12, 30), ZERO) == at(13)
    assert SPLIT.add(at(10), ZERO) == at(10)
    assert [SPLIT.is_open(at(h)) for h in (8, 9, 11, 12, 13, 17)] == [0, 1, 1, 0, 1, 0]
    assert SPLIT.next_close(at(11)) == at(12)
    assert SPLIT.next_close(at(12, 30)) == at(12, 30)
    assert SPLIT.next_open(at(12)) == at(13)
    assert SPLIT.elapsed(at(11), at(14)) == timedelta(hours=2)
    assert SPLIT.elapsed(at(14), at(11)) == timedelta(0)
    assert periods(SPLIT, at(0), at(23)) == [(at(9), at(12)), (at(13), at(17))]
    assert SPLIT.business_day_seconds == 7 * 3600


def test_touching_windows_and_midnight_merge_into_one_period() -> None:
    cal = BusinessCalendar(
        tz=NY,
        weekly={0: [W("09:00-12:00"), W("12:00-17:00"), W("22:00-24:00")], 1: [W("00:00-02:00")]},
    )
    monday = lambda h: local(NY, 2026, 6, 1, h)  # noqa: E731
    assert cal.next_close(monday(10)) == monday(17)
    assert cal.next_close(monday(23)) == local(NY, 2026, 6, 2, 2)
    assert periods(cal, monday(0), monday(0) + timedelta(days=2)) == [
        (monday(9), monday(17)),
        (monday(22), local(NY, 2026, 6, 2, 2)),
    ]


def test_open_dates_override_weekly_and_holidays_but_not_closures() -> None:
    saturday, thanksgiving = date(2026, 12, 5), date(2026, 11, 26)
    extra = {saturday: [W("10:00-14:00")], thanksgiving: [W("10:00-12:00")]}
    cal = calendar(
        NY, WEEKDAYS, "09:00-17:00", holidays={thanksgiving: "Thanksgiving"}, open_dates=extra
    )
    assert cal.is_open(local(NY, 2026, 12, 5, 11))
    assert cal.is_open(local(NY, 2026, 11, 26, 11))
    assert not cal.is_open(local(NY, 2026, 11, 26, 13))
    assert cal.describe_closure(thanksgiving) is None
    out_of_office = cal.with_closed([(saturday, saturday)])
    assert not out_of_office.is_open(local(NY, 2026, 12, 5, 11))
    assert out_of_office.describe_closure(saturday) == "closed"


def test_with_closed_adds_out_of_office_and_leaves_the_original_alone() -> None:
    cal = calendar(NY, WEEKDAYS, "09:00-17:00")
    rep = cal.with_closed([(date(2026, 6, 8), date(2026, 6, 9))])  # Monday-Tuesday
    friday = local(NY, 2026, 6, 5, 16)
    assert rep.add(friday, biz("2 business hours")) == local(NY, 2026, 6, 10, 10)
    assert cal.add(friday, biz("2 business hours")) == local(NY, 2026, 6, 8, 10)


def test_with_timezone_keeps_local_hours() -> None:
    cal = calendar(NY, WEEKDAYS, "09:00-17:00", name="us-sales")
    london = cal.with_timezone("Europe/London")
    at = local(LONDON, 2026, 6, 1, 9, 30)
    assert london.is_open(at) and not cal.is_open(at)
    assert london.tz == LONDON and london.name == "us-sales" and cal.tz == NY


def test_always_open_calendar() -> None:
    cal = calendar(NY, ALL_DAYS, "00:00-24:00")
    start = local(NY, 2026, 3, 1, 12).astimezone(UTC)  # UTC: + timedelta is then real time
    assert cal.business_day_seconds == 86400
    assert cal.add(start, biz("10 business days")) == start.astimezone(UTC) + timedelta(days=10)
    assert cal.elapsed(start, start + timedelta(days=31)) == timedelta(days=31)
    assert cal.is_open(start) and cal.next_open(start) == start
    assert periods(cal, start, start + timedelta(hours=1)) == [(start, start + timedelta(hours=1))]
    with pytest.raises(CalendarError, match="never closes"):
        cal.next_close(start)


def test_always_open_except_christmas() -> None:
    cal = calendar(NY, ALL_DAYS, "00:00-24:00", holidays={date(2026, 12, 25): "Christmas"})
    eve = local(NY, 2026, 12, 24, 12)
    assert cal.next_close(eve) == local(NY, 2026, 12, 25)
    assert cal.add(eve, biz("1 business day")) == local(NY, 2026, 12, 26, 12)
    with pytest.raises(CalendarError, match="never closes"):
        cal.next_close(local(NY, 2026, 12, 27))


def test_business_day_is_the_longest_day_unless_given() -> None:
    weekly = {d: [W("08:00-18:00")] for d in range(4)} | {4: [W("08:00-14:00")]}
    assert BusinessCalendar(tz=NY, weekly=weekly).business_day_seconds == 10 * 3600
    explicit = BusinessCalendar(tz=NY, weekly=weekly, business_day=timedelta(hours=8))
    assert explicit.business_day_seconds == 8 * 3600
    friday = local(NY, 2026, 6, 5, 8)
    assert explicit.add(friday, biz("1 business day")) == local(NY, 2026, 6, 8, 10)


def test_wall_durations_ignore_the_calendar() -> None:
    cal = calendar(NY, WEEKDAYS, "09:00-17:00")
    saturday = local(NY, 2026, 3, 7, 23)  # across spring forward: exact, not wall-clock
    assert cal.add(saturday, biz("5m")) == saturday + timedelta(minutes=5)
    assert cal.add(saturday, biz("1d")) == utc(2026, 3, 9, 4)
    assert cal.add(saturday, timedelta(days=1)) == utc(2026, 3, 9, 4)


def test_calendar_that_runs_out_of_open_time() -> None:
    day = date(2026, 6, 6)
    cal = BusinessCalendar(tz=NY, weekly={}, open_dates={day: [W("10:00-12:00")]})
    assert cal.business_day_seconds == 2 * 3600
    assert cal.next_open(local(NY, 2026, 6, 1)) == local(NY, 2026, 6, 6, 10)
    assert cal.next_close(local(NY, 2026, 6, 6, 11)) == local(NY, 2026, 6, 6, 12)
    assert not cal.is_open(local(NY, 2026, 7, 1))
    with pytest.raises(CalendarError, match="no open time after"):
        cal.next_open(local(NY, 2026, 7, 1))
    with pytest.raises(CalendarError, match="runs out of open time"):
        cal.add(local(NY, 2026, 6, 6, 11), biz("2 business hours"))


def test_performance_is_day_by_day_not_minute_by_minute() -> None:
    cal = calendar(
        NY, WEEKDAYS, "09:00-12:00", "13:00-17:00", holidays=dict(holiday_data.US(years=2026))
    )
    t0 = perf.perf_counter()
    for day in range(1, 101):
        start = utc(2026, 1, 1) + timedelta(days=day, minutes=day)
        cal.add(start, biz("10 business days"))
        cal.elapsed(start, start + timedelta(days=31))
    assert perf.perf_counter() - t0 < 1.0  # ~100x headroom; minute-stepping takes far longer


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weekly", "message"),
    [
        (
            {0: [W("09:00-13:00"), W("12:00-17:00")]},
            "Monday windows 09:00-13:00 and 12:00-17:00 overlap",
        ),
        (
            {2: [W("09:00-24:00"), W("12:00-13:00")]},
            "Wednesday windows 09:00-24:00 and 12:00-13:00",
        ),
        (
            {4: [Window(time(22), time(2))]},
            "Friday window 22:00-02:00 crosses midnight, which is not supported: split it into "
            "22:00-24:00 on Friday and 00:00-02:00 on Saturday",
        ),
        ({6: [Window(time(9), time(9))]}, "Sunday window 09:00-09:00 is empty"),
        ({}, "no open time"),
        ({0: []}, "no open time"),
        ({7: [W("09:00-17:00")]}, "weekday 7 must be 0"),
        ({0: [(time(9), time(17))]}, "is not a Window"),
        ({0: [Window(time(9, tzinfo=UTC), time(17))]}, "local wall time"),
    ],
)
def test_invalid_weekly_schedules(weekly: dict, message: str) -> None:
    with pytest.raises(CalendarError) as err:
        BusinessCalendar(tz=NY, weekly=weekly)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tz": "Mars/Olympus"}, "unknown time zone"),
        ({"closed": [(date(2026, 6, 9), date(2026, 6, 8))]}, "closed range"),
        ({"holidays": {datetime(2026, 1, 1): "New Year"}}, "must be a date"),
        ({"open_dates": {date(2026, 6, 6): []}}, "has no windows"),
        ({"open_dates": {date(2026, 6, 6): [W("10:00-12:00"), W("11:00-13:00")]}}, "2026-06-06"),
        ({"business_day": timedelta(0)}, "business_day"),
    ],
)
def test_invalid_calendar_options(kwargs: dict, message: str) -> None:
    args = {"tz": NY, "weekly": {0: [W("09:00-17:00")]}} | kwargs
    with pytest.raises(CalendarError, match=message):
        BusinessCalendar(**args)


def test_window_parsing_and_midnight() -> None:
    assert W("18:00-24:00") == Window(time(18)) == Window(time(18), time(0))
    assert str(W(" 09:00 - 17:30 ")) == "09:00-17:30"
    assert W("09:00-17:00").seconds() == 8 * 3600
    for bad in ("9-5", "09:00", "09:00-17:00-18:00", "24:00-24:00"):
        with pytest.raises(CalendarError, match="bad window"):
            W(bad)
    assert issubclass(CalendarError, ValueError)


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 6, 1, 10)
    for call in (
        lambda: SPLIT.is_open(naive),
        lambda: SPLIT.next_open(naive),
        lambda: SPLIT.next_close(naive),
        lambda: SPLIT.add(naive, biz("5m")),
        lambda: SPLIT.elapsed(naive, utc(2026, 6, 2)),
        lambda: SPLIT.open_periods(utc(2026, 6, 1), naive),
    ):
        with pytest.raises(ValueError, match="naive"):
            call()


# --- properties ----------------------------------------------------------------------------------


def _quarter(q: int) -> time | None:
    return None if q == 96 else time(q // 4, q % 4 * 15)


def _windows(points: list[int], keep: list[bool]) -> list[Window]:
    pairs = zip(points, points[1:], strict=False)
    return [Window(_quarter(a), _quarter(b)) for (a, b), k in zip(pairs, keep, strict=False) if k]


# Strategies are built once at import: rebuilding them inside composites dominated the runtime.
# A day has 0-3 windows on quarter hours, often in 01:00-03:00 where clocks change; consecutive
# windows may touch (split shifts, lunch breaks) but never overlap.
_POINTS = st.sets(st.integers(0, 96) | st.integers(4, 12), max_size=5).map(sorted)
DAY_WINDOWS = st.builds(_windows, _POINTS, st.lists(st.booleans(), min_size=4, max_size=4))
WEEKLY = st.lists(DAY_WINDOWS, min_size=7, max_size=7).map(lambda days: dict(enumerate(days)))
TWENTY_FOUR_SEVEN = st.just({d: [Window(time(0))] for d in ALL_DAYS})
DAY_OFFSETS = st.integers(-6, 12)
QUARTERS = st.integers(-96, 4 * 96) | st.integers(0, 32)  # -1d..+4d, or the small hours
SECONDS = st.just(0) | st.integers(0, 3599)


@st.composite
def scenarios(draw: st.DrawFn, instants: int = 1) -> tuple[dict, list[datetime]]:
    """A calendar spec (weekly incl. 24/7 and split windows, holidays, closures, open dates) and
    `instants` sorted UTC instants near one of its zone's DST changes."""
    zone = draw(st.sampled_from(list(ZONE_DAYS)))
    day = draw(st.sampled_from(ZONE_DAYS[zone]))
    weekly = draw(TWENTY_FOUR_SEVEN if draw(st.integers(0, 9)) == 0 else WEEKLY)
    if not any(weekly.values()):
        weekly[draw(st.integers(0, 6))] = [W("09:00-17:00")]
    near = [day + timedelta(days=k) for k in draw(st.lists(DAY_OFFSETS, max_size=6))]
    spec = {
        "tz": zone,
        "weekly": weekly,
        "holidays": {d: "holiday" for d in near[:4]},
        "closed": [(d, d + timedelta(days=2)) for d in near[4:5]],
        "open_dates": {d: [W("10:00-12:00")] for d in near[5:]},
    }
    midnight = datetime.combine(day, time(), zone).astimezone(UTC)
    times = [
        midnight + timedelta(minutes=15 * draw(QUARTERS), seconds=draw(SECONDS))
        for _ in range(instants)
    ]
    return spec, sorted(times)


business_durations = st.one_of(
    st.integers(1, 3000).map(lambda n: biz(f"{n} business minutes")),
    st.integers(1, 60).map(lambda n: biz(f"{n} business hours")),
    st.integers(1, 5).map(lambda n: biz(f"{n} business days")),
    st.integers(1, 200_000).map(lambda n: biz(f"{n} business seconds")),
    st.just(ZERO),
)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(scenarios(), business_durations)
def test_elapsed_inverts_add(scenario: tuple[dict, list[datetime]], d: Duration) -> None:
    spec, (a,) = scenario
    cal = BusinessCalendar(**spec)
    end = cal.add(a, d)
    needed = timedelta(seconds=d.business_seconds(cal))
    assert end >= a and end.tzinfo is UTC
    assert cal.elapsed(a, end) == needed
    if needed:  # and it is the earliest such instant: a count ending at a close stops there
        assert cal.elapsed(a, end - timedelta(microseconds=1)) < needed


@PROPERTY
@given(scenarios(), business_durations)
def test_add_lands_on_open_time_or_exactly_on_a_close(
    scenario: tuple[dict, list[datetime]], d: Duration
) -> None:
    spec, (a,) = scenario
    cal = BusinessCalendar(**spec)
    end = cal.add(a, d)
    tick = timedelta(microseconds=1)
    assert cal.is_open(end) or cal.elapsed(end - tick, end) == tick


@PROPERTY
@given(scenarios(), business_durations, business_durations)
def test_add_is_monotonic(
    scenario: tuple[dict, list[datetime]], d1: Duration, d2: Duration
) -> None:
    spec, (a,) = scenario
    cal = BusinessCalendar(**spec)
    if d1.business_seconds(cal) > d2.business_seconds(cal):
        d1, d2 = d2, d1
    assert cal.add(a, d1) <= cal.add(a, d2)


@PROPERTY
@given(scenarios(instants=3))
def test_elapsed_is_additive_and_matches_open_periods(
    scenario: tuple[dict, list[datetime]],
) -> None:
    spec, (a, b, c) = scenario
    cal = BusinessCalendar(**spec)
    assert cal.elapsed(a, c) == cal.elapsed(a, b) + cal.elapsed(b, c)
    spans = list(cal.open_periods(a, c))
    assert sum((e - s for s, e in spans), timedelta(0)) == cal.elapsed(a, c)
    assert all(a <= s < e <= c for s, e in spans)
    assert all(e1 < s2 for (_, e1), (s2, _) in zip(spans, spans[1:], strict=False))


@PROPERTY
@given(scenarios())
def test_next_open_and_next_close(scenario: tuple[dict, list[datetime]]) -> None:
    spec, (t,) = scenario
    cal = BusinessCalendar(**spec)
    opens = cal.next_open(t)
    assert opens >= t and cal.is_open(opens) and cal.elapsed(t, opens) == timedelta(0)
    try:
        closes = cal.next_close(opens)
    except CalendarError:
        days = spec["weekly"].values()
        assert len(days) == 7 and all(sum(w.seconds() for w in ws) == 86400 for ws in days)
        return
    assert not cal.is_open(closes) and cal.elapsed(opens, closes) == closes - opens


def _oracle_open(spec: dict, t: datetime) -> bool:
    """Naive wall-clock membership, straight from the spec (valid outside repeated hours)."""
    wall = t.astimezone(spec["tz"])
    day, clock = wall.date(), wall.time().replace(fold=0)
    if any(lo <= day <= hi for lo, hi in spec["closed"]):
        return False
    if day in spec["open_dates"]:
        windows = spec["open_dates"][day]
    elif day in spec["holidays"]:
        return False
    else:
        windows = spec["weekly"].get(day.weekday(), [])
    return any(w.start <= clock and (w.end is None or clock < w.end) for w in windows)


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_is_open_matches_wall_clock_outside_repeated_hours(
    scenario: tuple[dict, list[datetime]],
) -> None:
    """Every quarter hour of the DST-change day, plus the drawn instant, against the oracle."""
    spec, (t,) = scenario
    cal = BusinessCalendar(**spec)
    day = next(d for d in ZONE_DAYS[spec["tz"]] if abs((t.date() - d).days) <= 5)
    start = datetime.combine(day, time(), spec["tz"]).astimezone(UTC) - timedelta(hours=2)
    for u in [t, *(start + timedelta(minutes=15 * q) for q in range(30 * 4))]:
        if u.astimezone(spec["tz"]).fold == 0:  # second pass of a repeated hour: see DST table
            assert cal.is_open(u) == _oracle_open(spec, u), u
