"""Rule-file durations: what is accepted, what it means, and what is refused (and why)."""

from __future__ import annotations

from datetime import time, timedelta

import pytest

from sla_bot.businesstime import BusinessCalendar, Window
from sla_bot.durations import Duration, DurationError, parse_duration

NINE_TO_FIVE = BusinessCalendar(
    tz="America/New_York", weekly={d: [Window(time(9), time(17))] for d in range(5)}
)


@pytest.mark.parametrize(
    ("text", "seconds", "unit", "amount", "canonical"),
    [
        ("30s", 30, "seconds", 30, "30s"),
        ("5m", 300, "minutes", 5, "5m"),
        ("2h", 7200, "hours", 2, "2h"),
        ("3d", 3 * 86400, "days", 3, "3d"),
        ("1w", 7 * 86400, "days", 7, "1w"),
        ("1h30m", 5400, "minutes", 90, "1h30m"),
        ("1h 30m", 5400, "minutes", 90, "1h30m"),
        ("1d2h", 26 * 3600, "hours", 26, "1d2h"),
        ("1h0m", 3600, "hours", 1, "1h"),
        ("05m", 300, "minutes", 5, "5m"),
        ("  5M ", 300, "minutes", 5, "5m"),
        ("0s", 0, "seconds", 0, "0s"),
        ("0m", 0, "minutes", 0, "0m"),
    ],
)
def test_wall_durations(text: str, seconds: int, unit: str, amount: int, canonical: str) -> None:
    d = parse_duration(text)
    assert d == Duration(seconds, False, unit, amount, canonical)
    assert str(d) == canonical
    assert d.as_timedelta() == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("text", "seconds", "unit", "amount", "canonical"),
    [
        ("4 business hours", 4 * 3600, "hours", 4, "4 business hours"),
        ("1 business hour", 3600, "hours", 1, "1 business hour"),
        ("30 business minutes", 1800, "minutes", 30, "30 business minutes"),
        ("1 business minute", 60, "minutes", 1, "1 business minute"),
        ("45 business seconds", 45, "seconds", 45, "45 business seconds"),
        ("2 business days", 2 * 86400, "days", 2, "2 business days"),
        ("1 business day", 86400, "days", 1, "1 business day"),
        ("  4  Business\tHOURS ", 4 * 3600, "hours", 4, "4 business hours"),
        ("1 business hours", 3600, "hours", 1, "1 business hour"),
    ],
)
def test_business_durations(
    text: str, seconds: int, unit: str, amount: int, canonical: str
) -> None:
    assert parse_duration(text) == Duration(seconds, True, unit, amount, canonical)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "5",
        "5 mins",
        "5min",
        "1.5h",
        "-5m",
        "+5m",
        "5x",
        "30m1h",
        "1h1h",
        "0h",
        "0d",
        "0h0m",
        "0 business minutes",
        "1.5 business hours",
        "-1 business hour",
        "2 business weeks",
        "business hours",
        "4business hours",
        "367d",
        "400 business days",
        "٥m",  # non-ASCII digit
    ],
)
def test_rejected_text_names_the_input_and_the_accepted_forms(text: str) -> None:
    with pytest.raises(DurationError) as err:
        parse_duration(text)
    assert f'"{text}"' in str(err.value)
    message = str(err.value)
    assert "30s" in message or "0s or 0m" in message or "366" in message or "write " in message


@pytest.mark.parametrize("value", [300, 0, True, 1.5, None])
def test_bare_numbers_are_refused_because_the_unit_would_be_a_guess(value: object) -> None:
    with pytest.raises(DurationError, match="unit is required"):
        parse_duration(value)  # type: ignore[arg-type]


def test_error_message_matches_the_documented_shape() -> None:
    with pytest.raises(DurationError) as err:
        parse_duration("5 minuts")
    assert str(err.value) == (
        'bad duration "5 minuts": expected e.g. 30s, 5m, 2h, 3d or "4 business hours", '
        '"2 business days"'
    )


@pytest.mark.parametrize(
    ("text", "suggested"),
    [
        ("15 minutes", 'write 15m for wall-clock time, or "15 business minutes"'),
        ("1 hour", 'write 1h for wall-clock time, or "1 business hour"'),
        ("2 Days", 'write 2d for wall-clock time, or "2 business days"'),
        ("5mins", 'write 5m for wall-clock time, or "5 business minutes"'),
        ("3 weeks", "write 3w for wall-clock time"),
    ],
)
def test_spelled_out_units_get_the_spelling_that_works(text: str, suggested: str) -> None:
    with pytest.raises(DurationError) as err:
        parse_duration(text)
    assert str(err.value).startswith(f'bad duration "{text}": {suggested}')


def test_duration_error_is_a_value_error() -> None:
    assert issubclass(DurationError, ValueError)


def test_business_days_take_their_length_from_the_calendar() -> None:
    assert NINE_TO_FIVE.business_day_seconds == 8 * 3600
    assert parse_duration("2 business days").business_seconds(NINE_TO_FIVE) == 16 * 3600
    assert parse_duration("3 business hours").business_seconds(NINE_TO_FIVE) == 3 * 3600


def test_business_time_has_no_fixed_timedelta() -> None:
    with pytest.raises(DurationError, match="depends on a calendar"):
        parse_duration("4 business hours").as_timedelta()


def test_wall_time_has_no_business_seconds() -> None:
    with pytest.raises(DurationError, match="wall-clock"):
        parse_duration("4h").business_seconds(NINE_TO_FIVE)


def test_durations_are_frozen() -> None:
    d = parse_duration("5m")
    with pytest.raises(AttributeError):
        d.seconds = 1  # type: ignore[misc]
