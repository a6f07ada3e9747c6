"""Benchmark the backtest replay: leads per second on one core.

    python -m bench.backtest [--leads 100000] [--rules rules/] [--profile]

Builds a recorded history in memory (no database: the replay itself is what is measured) of
`--leads` leads arriving evenly over 30 days, each with 10 webhook events in 7 deliveries:
the contact (a sync), a property no rule reads, the first touch (last-contacted + count), a
status change, a second touch, an owner change, a third touch. Times vary per lead so some
first touches are late and some leads are paused by their status. Then replays it under the
rules and prints leads/s, inputs/s and decisions/s.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random

from sla_bot.backtest.history import EventBatch, History
from sla_bot.backtest.replay import replay
from sla_bot.clock import to_epoch_ms
from sla_bot.engine.events import Event
from sla_bot.rules import RulesHolder

START = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
PORTAL = 1
OWNERS = ("1001", "1002", "1003")
S, M, H, D = timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


def _batch(oid: int, at: datetime, *props: tuple[str, str]) -> EventBatch:
    ms = to_epoch_ms(at)
    events = tuple(Event(PORTAL, oid, "contact.propertyChange", ms, k, v) for k, v in props)
    return EventBatch(at + S, PORTAL, oid, events)


def history(n: int, seed: int = 7) -> History:
    rnd = Random(seed)
    inputs = []
    spread = 30 * D / n
    for i in range(n):
        oid = 100_000 + i
        created = START + spread * i
        props = {
            "createdate": created.isoformat(),
            "hubspot_owner_id": rnd.choice(OWNERS),
            "lead_source": "demo_request",
            "firstname": f"Lead{oid}",
            "num_contacted_notes": "0",
        }
        raw = {"subscriptionType": "contact.sync", "properties": props}
        sync = Event(PORTAL, oid, "contact.sync", to_epoch_ms(created), "", None, raw)
        inputs.append(EventBatch(created + S, PORTAL, oid, (sync,)))
        inputs.append(_batch(oid, created + 30 * S, ("lifecyclestage", "lead")))
        t = created + rnd.choice([2 * M, 4 * M, 9 * M, 40 * M])
        for k, gap in enumerate([0 * M, rnd.choice([H, D]), rnd.choice([D, 3 * D])], start=1):
            t += gap
            inputs.append(
                _batch(
                    oid, t, ("notes_last_contacted", t.isoformat()), ("num_contacted_notes", str(k))
                )
            )
            if k == 1:
                status = rnd.choice(["ATTEMPTED_TO_CONTACT", "OPEN", "BAD_TIMING"])
                inputs.append(_batch(oid, t + 5 * M, ("hs_lead_status", status)))
            if k == 2:
                inputs.append(_batch(oid, t + H, ("hubspot_owner_id", rnd.choice(OWNERS))))
    return History(inputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--rules", type=Path, default=Path("rules"))
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    holder = RulesHolder(args.rules)
    holder.reload_if_changed()
    loaded = holder.current()
    t0 = time.perf_counter()
    h = history(args.leads)
    built = time.perf_counter() - t0
    events = sum(len(i.events) for i in h.inputs if isinstance(i, EventBatch))
    decisions = 0

    class Count:
        def changed(self, lead, at, source, entries, rows, owner_before) -> None:  # noqa: ANN001
            nonlocal decisions
            decisions += source == "decide"

        def cancelled(self, row, at) -> None:  # noqa: ANN001
            pass

    end = START + 40 * D
    profile = cProfile.Profile() if args.profile else None
    t1 = time.perf_counter()
    if profile:
        profile.enable()
    out = replay(h, loaded, until=end, observer=Count())
    if profile:
        profile.disable()
    took = time.perf_counter() - t1
    print(
        f"history: {args.leads:,} leads, {events:,} events, {len(h.inputs):,} deliveries "
        f"(built in {built:.1f} s)"
    )
    print(
        f"replay:  {took:.1f} s, {args.leads / took:,.0f} leads/s, "
        f"{len(h.inputs) / took:,.0f} deliveries/s, {decisions / took:,.0f} decisions/s "
        f"({decisions / args.leads:.1f} decisions per lead, {out.errors} errors)"
    )
    if profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
