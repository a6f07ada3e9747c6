"""A recorded history made the real way: many varied leads through the worker's own code.

`scripts(n, seed)` writes what happens to each lead (webhooks with touches, pauses with and
without follow-up dates, owner changes, connects, disqualifications, stops, deletions, merges,
late and duplicate deliveries; Slack buttons: I'm on it, snooze, log touch with HubSpot's late
echo, reassign to a rep or by round robin). `run_worker` plays them on a frozen clock through
the intake, split, apply, fetch (fake HubSpot), sweep and delivery code, ticking like the
worker: on a one-second grid, whenever something is due or has arrived.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from integrations.hubspot.fake import FakeHubSpot
from sla_bot.clock import FrozenClock, to_epoch_ms
from sla_bot.db.schema import leads, outbox
from sla_bot.engine import actions
from sla_bot.engine.actions import ActionRefused, LeadRef
from sla_bot.engine.apply import apply_pending
from sla_bot.engine.sweep import sweep_due
from sla_bot.fetching import Fetcher
from sla_bot.outbox import deliver_due
from sla_bot.splitter import split_pending
from tests.engine.harness import PORTAL, Harness

START = datetime(2026, 11, 19, 14, 0, tzinfo=UTC)  # Thursday 09:00 in New York
OWNERS = ("1001", "1002", "1003", "2001")  # 2001 is in no team
S, M, H, D = (timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1), timedelta(days=1))


@dataclass
class Happening:
    at: datetime
    kind: str  # webhook | button | hubspot
    object_id: int
    events: list[dict[str, Any]] = field(default_factory=list)
    button: str = ""
    params: dict[str, Any] = field(default_factory=dict)


class _Lead:
    def __init__(self, rnd: Random, object_id: int, at: datetime) -> None:
        self.rnd, self.id, self.at = rnd, object_id, at
        self.n = 0
        self.count = 0
        self.out: list[Happening] = []

    def event(self, kind: str, at: datetime, **extra: Any) -> dict[str, Any]:
        self.n += 1
        item = {
            "eventId": self.id * 1000 + self.n,
            "subscriptionId": 7,
            "portalId": PORTAL,
            "occurredAt": to_epoch_ms(at),
            "subscriptionType": kind,
            "attemptNumber": 0,
            "objectId": self.id,
            "changeSource": "CRM",
        }
        item.update(extra)
        return item

    def prop(self, at: datetime, name: str, value: Any) -> dict[str, Any]:
        text = None if value is None else str(value)
        return self.event("contact.propertyChange", at, propertyName=name, propertyValue=text)

    def webhook(self, at: datetime, *events: dict[str, Any], arrives: timedelta = S) -> None:
        self.out.append(Happening(at + arrives, "webhook", self.id, list(events)))

    def button(self, at: datetime, button: str, **params: Any) -> None:
        self.out.append(Happening(at, "button", self.id, button=button, params=params))

    def touch(self, at: datetime) -> None:
        self.count += 1
        self.webhook(
            at,
            self.prop(at, "notes_last_contacted", at.isoformat()),
            self.prop(at, "num_contacted_notes", self.count),
        )


def _jitter(rnd: Random, base: timedelta) -> timedelta:
    return base * rnd.uniform(0.3, 1.7) + timedelta(milliseconds=rnd.randrange(1000))


def scripts(n: int, seed: int = 13) -> list[Happening]:
    """What happens to `n` leads, in time order."""
    rnd = Random(seed)
    out: list[Happening] = []
    ids = [5000 + i for i in range(n)]
    for oid in ids:
        created = START + timedelta(seconds=rnd.randrange(0, int(2.5 * 86400)))
        created = created.replace(microsecond=rnd.randrange(0, 1000) * 1000)
        lead = _Lead(rnd, oid, created)
        owner = rnd.choice(OWNERS) if rnd.random() < 0.8 else None
        props = {
            "createdate": created.isoformat(),
            "lastmodifieddate": created.isoformat(),
            "lead_source": "demo_request" if rnd.random() < 0.85 else "newsletter",
            "firstname": f"Lead{oid}",
            "lastname": "Test",
            "email": f"lead{oid}@example.com",
            "num_contacted_notes": "0",
        }
        if owner:
            props["hubspot_owner_id"] = owner
        lead.out.append(Happening(created, "hubspot", oid, params=props))
        if rnd.random() < 0.5:  # a reconciliation-style sync carries the whole contact
            sync = lead.event("contact.sync", created, properties=props)
            lead.webhook(created, sync, arrives=_jitter(rnd, 2 * S))
        else:  # a creation event; the worker reads the contact from HubSpot
            lead.webhook(created, lead.event("contact.creation", created), arrives=2 * S)
        t = created
        for _ in range(rnd.randrange(2, 9)):
            t += _jitter(rnd, rnd.choice([2 * M, 7 * M, 30 * M, 3 * H, D]))
            _happen(rnd, lead, t, ids)
        out += lead.out
    return sorted(out, key=lambda h: (h.at, h.object_id))


def _happen(rnd: Random, lead: _Lead, t: datetime, ids: list[int]) -> None:
    r = rnd.random()
    if r < 0.28:
        lead.touch(t)
    elif r < 0.36:  # logged in Slack; HubSpot echoes it minutes to hours later
        lead.button(t, "log_touch", outcome="connect" if rnd.random() < 0.2 else "attempt")
        echo = t + rnd.choice([2 * M, 40 * M, 5 * H])
        lead.count += 1
        lead.webhook(
            echo,
            lead.prop(echo, "notes_last_contacted", t.isoformat()),
            lead.prop(echo, "num_contacted_notes", lead.count),
        )
    elif r < 0.44:
        lead.webhook(t, lead.prop(t, "hubspot_owner_id", rnd.choice(OWNERS)))
    elif r < 0.52:
        events = [lead.prop(t, "hs_lead_status", "BAD_TIMING")]
        if rnd.random() < 0.5:
            follow = (t + rnd.choice([H, D, 3 * D])).replace(microsecond=0)
            events.insert(0, lead.prop(t, "follow_up_date", follow.isoformat()))
        lead.webhook(t, *events)
        if rnd.random() < 0.6:
            back = t + rnd.choice([10 * M, 4 * H, 2 * D])
            lead.webhook(back, lead.prop(back, "hs_lead_status", "OPEN"))
    elif r < 0.56:
        lead.webhook(t, lead.prop(t, "hs_lead_status", "CONNECTED"))
    elif r < 0.60:
        lead.webhook(t, lead.prop(t, "hs_lead_status", "UNQUALIFIED"))
    elif r < 0.62:
        lead.webhook(t, lead.prop(t, "lifecyclestage", "salesqualifiedlead"))
        if rnd.random() < 0.5:
            back = t + 3 * H
            lead.webhook(back, lead.prop(back, "lifecyclestage", "lead"))
    elif r < 0.70:
        lead.button(t, "ack")
    elif r < 0.76:
        lead.button(t, "snooze", until=t + rnd.choice([20 * M, 2 * H, 30 * H]))
    elif r < 0.83:
        to = None if rnd.random() < 0.5 else rnd.choice(OWNERS[:3])
        lead.button(t, "reassign", to=to)
    elif r < 0.87:  # an old value delivered late (a retry): stale, ignored
        old = t - rnd.choice([10 * M, 2 * H])
        lead.webhook(t, lead.prop(old, "hs_lead_status", "NEW"))
    elif r < 0.92:  # HubSpot delivers the last batch again
        previous = next((h for h in reversed(lead.out) if h.kind == "webhook"), None)
        if previous is not None:
            lead.out.append(Happening(t, "webhook", lead.id, list(previous.events)))
    elif r < 0.95:
        lead.webhook(t, lead.event("contact.deletion", t))
    else:  # another lead is merged into this one
        other = rnd.choice(ids)
        if other != lead.id:
            merge = lead.event(
                "contact.merge", t, primaryObjectId=lead.id, mergedObjectIds=[other, lead.id]
            )
            lead.webhook(t, merge)


def _grid(at: datetime) -> datetime:
    """The worker's next tick at or after `at`: it ticks on whole seconds."""
    whole = math.ceil(at.timestamp())
    return datetime.fromtimestamp(whole, UTC)


def run_worker(
    engine: Engine,
    clock: FrozenClock,
    happenings: list[Happening],
    *,
    until: datetime,
    hubspot: FakeHubSpot,
    fetcher: Fetcher,
    loaded: Any,
) -> Harness:
    """Play the happenings through the worker; tick whenever something arrives or is due.

    A tick runs the worker's jobs in order (split, apply, fetch, sweep, deliver) at the tick's
    instant; a job with nothing to do is not called (it would only query and find nothing).
    """
    h = Harness(engine, clock, loaded, fetcher)
    todo = list(happenings)
    i = 0
    last: datetime | None = None
    ticks = 0
    while True:
        with engine.connect() as conn:
            due = conn.execute(select(func.min(leads.c.next_due_at))).scalar()
            deliver = conn.execute(
                select(func.min(outbox.c.next_attempt_at)).where(outbox.c.status == "pending")
            ).scalar()
        arrive = todo[i].at if i < len(todo) else None
        nxt = min((t for t in (due, deliver, arrive) if t is not None), default=None)
        if nxt is None:
            break
        tick = _grid(nxt)
        if last is not None and tick <= last:
            tick = last + S
        if tick >= until:
            break
        arrived = False
        while i < len(todo) and todo[i].at <= tick:
            arrived = _play(h, todo[i], hubspot, loaded) or arrived
            i += 1
        clock.set(tick)
        ticks += 1
        if arrived:
            split_pending(engine, now=tick)
            while apply_pending(engine, loaded, now=tick, fetching=True).contacts >= 200:
                pass
        fetcher.run(engine, loaded, now=tick)
        sweep_due(engine, loaded, now=tick)
        for recorder in (h.slack, h.hubspot):
            deliver_due(engine, recorder, now=tick, limit=1000)
        last = tick
    h.ticks = ticks  # type: ignore[attr-defined]
    return h


def _play(h: Harness, item: Happening, hubspot: FakeHubSpot, loaded: Any) -> bool:
    """Do one happening at its instant; True if a webhook was stored."""
    h.clock.set(item.at)
    if item.kind == "hubspot":
        hubspot.add_contact(str(item.object_id), dict(item.params))
        return False
    if item.kind == "webhook":
        h.webhook(*item.events)
        return True
    with h.engine.connect() as conn:
        row = conn.execute(
            select(leads.c.id, leads.c.state).where(
                leads.c.portal_id == PORTAL, leads.c.object_id == item.object_id
            )
        ).first()
    if row is None:
        return False
    found = h.lead(item.object_id)
    if found.policy is None:
        return False  # nobody gets a message, so nobody presses a button, about an unwatched lead
    ref = LeadRef(found.id or 0, found.state.button_version)
    now, p = item.at, item.params
    try:
        if item.button == "ack":
            actions.acknowledge(h.engine, ref, by="U1", now=now, silence=30 * M)
        elif item.button == "snooze":
            actions.snooze(h.engine, ref, by="U1", until=p["until"], now=now)
        elif item.button == "log_touch":
            actions.log_touch(
                h.engine, ref, by="U1", at=now, kind="call", outcome=p["outcome"], note="called"
            )
        elif item.button == "reassign":
            actions.reassign(h.engine, loaded, ref, by="U9", to_owner_id=p["to"], now=now)
    except ActionRefused:
        pass
    return False
