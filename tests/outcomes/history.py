"""A seeded history with known answers: eight leads, two reps, two sources, two campaigns, a
lead that waits over the end of daylight saving time (Sunday 2026-11-01 in New York).

The history is played through the real engine (webhooks stored, split, applied, swept at the
times a worker would), so the outcome facts are the ones the engine records. Times are New York
local. The hand-computed answers are in test_report_history.py.

lead  rep    source   campaign  created              first touch          then
1     Alex   PAID     webinar   Mon 10-26 09:00      09:03 (met)          2 more; UNQUALIFIED 10-28
2     Blair  ORGANIC  search    Mon 10-26 10:00      10:08 (3m late)      CONNECTED; SQL 10-27
3     Alex   ORGANIC  search    Tue 10-27 17:58      Wed 08:10 (7m late)  UNQUALIFIED (premature)
4     Blair  PAID     webinar   Fri 10-30 17:55 EDT  Mon 08:03 EST        opportunity 11-03
5     Alex   PAID     webinar   Mon 11-02 09:00      09:02 (met)          2 more; recycled 11-09
6     Blair  ORGANIC  -         Mon 11-02 11:00      never                recycled 11-09 (0 touches)
7     Alex   ORGANIC  search    Tue 11-03 14:00      14:04 (met)          CONNECTED; SQL..customer
8     Blair  PAID     search    Wed 11-04 16:00      16:04 by Alex (met)  moved to Alex at 16:02
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from sla_bot.clock import FrozenClock, to_epoch_ms
from sla_bot.db.schema import leads
from tests.engine.harness import PORTAL, Harness, load_rules

RULES = Path(__file__).resolve().parent / "history_rules"
NY = ZoneInfo("America/New_York")
ALEX, BLAIR = "1001", "1002"
END = "2026-11-10 12:00"  # the history is played until then


def ny(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=NY).astimezone(UTC)


class _Events:
    def __init__(self) -> None:
        self.n = 0

    def event(self, kind: str, oid: int, at: datetime, **extra: Any) -> dict[str, Any]:
        self.n += 1
        return {
            "eventId": 5000 + self.n,
            "subscriptionId": 9,
            "portalId": PORTAL,
            "occurredAt": to_epoch_ms(at),
            "subscriptionType": kind,
            "attemptNumber": 0,
            "objectId": oid,
            **extra,
        }

    def created(self, oid: int, at: datetime, owner: str, source: str, campaign: str | None):
        props = {
            "createdate": at.isoformat(),
            "hubspot_owner_id": owner,
            "lead_source": "inbound",
            "firstname": f"Lead{oid}",
            "lastname": "Example",
            "hs_analytics_source": source,
        }
        if campaign:
            props["utm_campaign"] = campaign
        return self.event("contact.sync", oid, at, properties=props)

    def prop(self, oid: int, at: datetime, name: str, value: Any) -> dict[str, Any]:
        return self.event(
            "contact.propertyChange", oid, at, propertyName=name, propertyValue=str(value)
        )


def script() -> list[tuple[datetime, dict[str, Any]]]:
    """(time, event) of the whole history, in no particular order."""
    e = _Events()
    out: list[tuple[datetime, dict[str, Any]]] = []

    def at(when: str, make: Any, *args: Any) -> None:
        t = ny(when)
        out.append((t, make(args[0], t, *args[1:])))

    # Lead 1: Alex, met, three touches, disqualified after the minimum.
    at("2026-10-26 09:00", e.created, 1, ALEX, "PAID_SEARCH", "webinar")
    at("2026-10-26 09:03", e.prop, 1, "num_contacted_notes", 1)
    at("2026-10-27 10:00", e.prop, 1, "num_contacted_notes", 2)
    at("2026-10-28 10:00", e.prop, 1, "num_contacted_notes", 3)
    at("2026-10-28 11:00", e.prop, 1, "hs_lead_status", "UNQUALIFIED")
    # Lead 2: Blair, late by 3 minutes, connected, converted to SQL.
    at("2026-10-26 10:00", e.created, 2, BLAIR, "ORGANIC_SEARCH", "search")
    at("2026-10-26 10:08", e.prop, 2, "num_contacted_notes", 1)
    at("2026-10-26 10:30", e.prop, 2, "hs_lead_status", "CONNECTED")
    at("2026-10-27 12:00", e.prop, 2, "lifecyclestage", "salesqualifiedlead")
    # Lead 3: Alex, after hours, late, disqualified after one touch (premature).
    at("2026-10-27 17:58", e.created, 3, ALEX, "ORGANIC_SEARCH", "search")
    at("2026-10-28 08:10", e.prop, 3, "num_contacted_notes", 1)
    at("2026-10-28 09:00", e.prop, 3, "hs_lead_status", "UNQUALIFIED")
    # Lead 4: Blair, Friday evening before the DST change, touched Monday morning.
    at("2026-10-30 17:55", e.created, 4, BLAIR, "PAID_SEARCH", "webinar")
    at("2026-11-02 08:03", e.prop, 4, "num_contacted_notes", 1)
    at("2026-11-03 10:00", e.prop, 4, "lifecyclestage", "opportunity")
    # Lead 5: Alex, met, three touches, no connect: recycled at the end of the cadence.
    at("2026-11-02 09:00", e.created, 5, ALEX, "PAID_SEARCH", "webinar")
    at("2026-11-02 09:02", e.prop, 5, "num_contacted_notes", 1)
    at("2026-11-03 09:00", e.prop, 5, "num_contacted_notes", 2)
    at("2026-11-04 09:00", e.prop, 5, "num_contacted_notes", 3)
    # Lead 6: Blair, never touched: breached, escalated, recycled.
    at("2026-11-02 11:00", e.created, 6, BLAIR, "ORGANIC_SEARCH", None)
    # Lead 7: Alex, met (a logged call's last-contacted time), connected, all the way to customer.
    at("2026-11-03 14:00", e.created, 7, ALEX, "ORGANIC_SEARCH", "search")
    at("2026-11-03 14:04", e.prop, 7, "notes_last_contacted", ny("2026-11-03 14:04").isoformat())
    at("2026-11-03 14:20", e.prop, 7, "hs_lead_status", "CONNECTED")
    at("2026-11-05 10:00", e.prop, 7, "lifecyclestage", "salesqualifiedlead")
    at("2026-11-06 10:00", e.prop, 7, "lifecyclestage", "opportunity")
    at("2026-11-09 10:00", e.prop, 7, "lifecyclestage", "customer")
    # Lead 8: Blair's, moved to Alex in HubSpot, who touches it in time. Still open.
    at("2026-11-04 16:00", e.created, 8, BLAIR, "PAID_SEARCH", "search")
    at("2026-11-04 16:02", e.prop, 8, "hubspot_owner_id", ALEX)
    at("2026-11-04 16:04", e.prop, 8, "num_contacted_notes", 1)
    return out


def _next_due(engine: Engine) -> datetime | None:
    with engine.connect() as conn:
        return conn.execute(select(func.min(leads.c.next_due_at))).scalar()


def play(engine: Engine, until: str = END) -> Harness:
    """Play the history through the engine, ticking whenever a worker would: at each event and
    at each lead's next due time."""
    clock = FrozenClock(ny("2026-10-26 08:00"))
    h = Harness(engine, clock, load_rules(RULES), deliver=False)
    end = ny(until)
    pending = sorted(script(), key=lambda item: item[0])
    while True:
        due = _next_due(engine)
        upcoming = pending[0][0] if pending else end
        if due is not None and due < upcoming and due <= end:
            h.at(max(due, clock.now()))
            continue
        if not pending:
            break
        when = pending[0][0]
        batch = [ev for t, ev in pending if t == when]
        pending = [(t, ev) for t, ev in pending if t != when]
        h.webhook(*batch)
        h.at(when)
    h.at(end)
    return h
