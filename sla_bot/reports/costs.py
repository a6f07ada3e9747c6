"""Campaign costs: a small CSV file ops keep beside the rules (`campaign-costs.csv`).

    # spend per campaign and period; `to` is inclusive; portal is optional
    campaign,from,to,spend,portal
    spring-webinar,2026-10-01,2026-10-31,1200.00,
    paid-search,2026-10-01,2026-12-31,3000,62515

A report over [since, until) counts the part of each period inside it, by whole days (a period
of 31 days with 10 inside the window counts 10/31 of its spend). Errors come out as
`file:line:col: message`, like rule files. It is CSV and not YAML so the rules loader, which
reads every *.yaml beside it, leaves it alone.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from zoneinfo import ZoneInfo

from sla_bot.rules.errors import RuleError, RulesInvalid

FILE_NAME = "campaign-costs.csv"
REQUIRED = ("campaign", "from", "to", "spend")
OPTIONAL = ("portal",)


@dataclass(frozen=True)
class Period:
    campaign: str
    start: date
    end: date  # inclusive
    spend: Decimal
    portal: int | None
    line: int

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class Costs:
    source: str
    periods: tuple[Period, ...]

    def spend_by_campaign(
        self,
        since: datetime | None,
        until: datetime | None,
        tz: ZoneInfo,
        *,
        portal: int | None = None,
    ) -> dict[str, Decimal]:
        """Spend inside [since, until) per campaign (unrounded; whole periods without bounds)."""
        first = since.astimezone(tz).date() if since else None
        last = None  # exclusive
        if until is not None:
            local = until.astimezone(tz)
            last = local.date() + timedelta(days=0 if local.time() == time(0) else 1)
        out: dict[str, Decimal] = {}
        for p in self.periods:
            if portal is not None and p.portal not in (None, portal):
                continue
            lo = max(p.start, first) if first else p.start
            hi = min(p.end + timedelta(days=1), last) if last else p.end + timedelta(days=1)
            inside = max((hi - lo).days, 0)
            if inside:
                share = p.spend * inside / p.days
                out[p.campaign] = out.get(p.campaign, Decimal(0)) + share
        return out


def _columns(line: str) -> list[int]:
    """1-based start column of each field of a simple CSV line (quotes make it approximate)."""
    cols, col = [], 1
    for field in next(csv.reader([line]), []):
        cols.append(col)
        col += len(field) + 1
    return cols


def parse(text: str, source: str) -> Costs:
    """Parse a costs file; RulesInvalid with every error (file:line:col) if it is not valid."""
    errors: list[RuleError] = []
    lines = text.splitlines()
    header: list[str] | None = None
    periods: list[Period] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in next(csv.reader(io.StringIO(raw)), [])]
        cols = _columns(raw)
        if header is None:
            header = [f.lower() for f in fields]
            missing = [c for c in REQUIRED if c not in header]
            unknown = [c for c in header if c not in (*REQUIRED, *OPTIONAL)]
            if missing:
                errors.append(
                    RuleError(
                        source,
                        number,
                        1,
                        f"the header must name the columns {', '.join(REQUIRED)} (and optionally "
                        f"portal); missing: {', '.join(missing)}",
                    )
                )
            for name in unknown:
                col = cols[header.index(name)] if header.index(name) < len(cols) else 1
                errors.append(
                    RuleError(
                        source,
                        number,
                        col,
                        f"unknown column '{name}': expected {', '.join((*REQUIRED, *OPTIONAL))}",
                    )
                )
            if missing:
                break
            continue
        period = _period(header, fields, cols, source, number, errors)
        if period is not None:
            periods.append(period)
    if header is None:
        errors.append(RuleError(source, 0, 0, f"no header line: expected {','.join(REQUIRED)}"))
    errors += _overlaps(periods, source)
    if errors:
        raise RulesInvalid(sorted(errors))
    return Costs(source, tuple(periods))


def _period(
    header: list[str],
    fields: list[str],
    cols: list[int],
    source: str,
    line: int,
    errors: list[RuleError],
) -> Period | None:
    def cell(name: str) -> tuple[str, int]:
        i = header.index(name) if name in header else -1
        if i < 0 or i >= len(fields):
            return "", (cols[-1] if cols else 1)
        return fields[i], cols[i]

    before = len(errors)
    if len(fields) > len(header):
        errors.append(
            RuleError(
                source, line, cols[len(header)], f"{len(fields)} fields, header has {len(header)}"
            )
        )
    campaign, col = cell("campaign")
    if not campaign:
        errors.append(RuleError(source, line, col, "campaign is empty"))
    start = _date(cell("from"), "from", source, line, errors)
    end = _date(cell("to"), "to", source, line, errors)
    if start and end and end < start:
        errors.append(
            RuleError(source, line, cell("to")[1], f"'to' {end} is before 'from' {start}")
        )
    spend_text, col = cell("spend")
    spend = None
    try:
        spend = Decimal(spend_text.replace("_", ""))
        if not spend.is_finite() or spend < 0:
            raise InvalidOperation
    except InvalidOperation:
        errors.append(
            RuleError(
                source, line, col, f"spend {spend_text!r}: expected an amount such as 1200.50"
            )
        )
    portal = None
    portal_text, col = cell("portal")
    if portal_text:
        if portal_text.isdigit():
            portal = int(portal_text)
        else:
            errors.append(
                RuleError(source, line, col, f"portal {portal_text!r}: expected a portal id")
            )
    if len(errors) > before or start is None or end is None or spend is None:
        return None
    return Period(campaign, start, end, spend, portal, line)


def _date(
    cell: tuple[str, int], name: str, source: str, line: int, errors: list[RuleError]
) -> date | None:
    text, col = cell
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors.append(RuleError(source, line, col, f"{name} {text!r}: expected a date YYYY-MM-DD"))
        return None


def _overlaps(periods: list[Period], source: str) -> list[RuleError]:
    errors = []
    ordered = sorted(periods, key=lambda p: (p.campaign, p.portal or 0, p.start))
    for a, b in zip(ordered, ordered[1:], strict=False):
        if (a.campaign, a.portal) == (b.campaign, b.portal) and b.start <= a.end:
            errors.append(
                RuleError(
                    source,
                    b.line,
                    1,
                    f"{b.campaign}: {b.start}..{b.end} overlaps the period on line {a.line} "
                    f"({a.start}..{a.end}); its spend would count twice",
                )
            )
    return errors


def load(path: Path) -> Costs:
    """Read and validate a costs file; RulesInvalid lists every error."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesInvalid([RuleError(str(path), 0, 0, f"cannot read: {exc.strerror}")]) from None
    return parse(text, str(path))


def find(explicit: Path | None, rules_dir: Path) -> Path | None:
    """The costs file in use: the one named, else `campaign-costs.csv` beside the rules, if any."""
    if explicit is not None:
        return explicit
    beside = rules_dir / FILE_NAME
    return beside if beside.is_file() else None
