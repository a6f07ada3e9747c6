"""Turn calendar definitions from rule files into `BusinessCalendar`s, holidays included.

Public holidays come from the `holidays` package. BusinessCalendar takes a plain date -> name map,
so holidays are expanded for a range of years around the year a lead is handled in (see
`holiday_years`); the RuleSet caches one calendar per (name, time zone, year).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta

import holidays as holidays_pkg

from sla_bot.businesstime import BusinessCalendar
from sla_bot.rules.model import Calendar, HolidaySource
from sla_bot.rules.yamlpos import Path

# Deadlines rarely reach more than a few months ahead; one year back covers leads created late
# in December whose cadence runs into January, three ahead covers long nurture pauses.
YEARS_BACK, YEARS_AHEAD = 1, 3


def holiday_years(year: int, last_year: int | None = None) -> range:
    """Years to expand holidays for: around `year`, or around a lead's whole life (from the
    start of its clock to now), so a lead evaluated years later keeps its own holidays."""
    return range(year - YEARS_BACK, max(year, last_year or year) + YEARS_AHEAD + 1)


def _fetch(src: HolidaySource, years: Iterable[int]) -> dict[date, str]:
    found = holidays_pkg.country_holidays(
        src.country, subdiv=src.subdivision, years=list(years), observed=src.observed
    )
    return dict(found.items())


def _without(name: str, skip: Sequence[str]) -> str | None:
    """Drop skipped holidays from a name ("A; B" when two fall on one day, "A (observed)")."""
    kept = [
        part
        for part in name.split("; ")
        if not any(part == s or part.startswith(f"{s} (") for s in skip)
    ]
    return "; ".join(kept) or None


def holiday_map(sources: Sequence[HolidaySource], years: Iterable[int]) -> dict[date, str]:
    """All public holidays of all sources in `years`, minus the ones the team works."""
    years = list(years)
    out: dict[date, str] = {}
    for src in sources:
        for day, name in _fetch(src, years).items():
            kept = _without(name, src.skip)
            if kept:
                out[day] = f"{out[day]}; {kept}" if day in out and kept not in out[day] else kept
    return out


def check_holiday_source(src: HolidaySource, year: int) -> list[tuple[Path, str]]:
    """Skipped holiday names that do not exist (a typo would silently keep the day closed)."""
    problems: list[tuple[Path, str]] = []
    if src.skip:
        names = {
            part for name in _fetch(src, holiday_years(year)).values() for part in name.split("; ")
        }
        for i, skip in enumerate(src.skip):
            if skip not in names:
                problems.append(
                    (
                        ("skip", i),
                        f"no holiday named '{skip}' in {src.country} "
                        f"(known: {', '.join(sorted(names))})",
                    )
                )
    return problems


def build_calendar(
    name: str, cal: Calendar, year: int, tz: str | None = None, last_year: int | None = None
) -> BusinessCalendar:
    """The BusinessCalendar for a definition, with holidays from `year` to `last_year`."""
    return BusinessCalendar(
        tz=tz or cal.timezone,
        weekly=dict(cal.hours.days),
        holidays=holiday_map(cal.holidays, holiday_years(year, last_year)),
        closed=[(r.from_, r.to) for r in cal.closed],
        open_dates=dict(cal.open),
        business_day=timedelta(seconds=cal.business_day.seconds) if cal.business_day else None,
        name=name,
    )
