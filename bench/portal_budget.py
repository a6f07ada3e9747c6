"""Shared HubSpot budgets under load: two worker processes, two portals, a contact backfill.

Scenario: N contacts (half per portal) arrive as `contact.creation` webhooks; two `sla-bot
worker` processes on one PostgreSQL fetch them (100 per call, owners looked up), route them, and
write back for a share of them (a Lead Status update and a note each) while reconciliation
searches run. The fake HubSpot enforces each portal's limit exactly as configured (requests per
window, and the search API's own limit), answers 429 past it, and records every request's arrival
time per portal. The run reports, per portal, the most requests that arrived within any one
window, against the budget, and the 429s the fake answered.

    python -m bench.portal_budget                      # real size: 5,000 contacts, 100/10s
    python -m bench.portal_budget --budget 25/1s --contacts 5000 --writeback-share 0.05

Needs SLA_BOT_TEST_DATABASE_URL (a PostgreSQL URL; a fresh schema is made and dropped).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from integrations.hubspot.fake import FakeHubSpot
from sla_bot.clock import to_epoch_ms
from sla_bot.config import parse_rate
from sla_bot.db import migrate
from sla_bot.db.engine import make_engine
from sla_bot.db.schema import leads, outbox
from sla_bot.intake import store_batch

PORTALS = (101101, 202202)
SECRET = "bench-client-secret"
RULES = """
calendars:
  always: {timezone: UTC, hours: {mon-sun: "00:00-24:00"}}
teams:
  reps: {calendar: always, members: [{owner_id: "501", email: rep@example.com}]}
policies:
  write_back:
    team: reps
    first_touch: {within: 1m, clock_starts: created}
    escalation:
      - {after: 0m, do: [{update_property: {hs_lead_status: OPEN}}]}
  watch:
    team: reps
    first_touch: {within: 30d, clock_starts: created}
routing:
  every_portal:
    leads:
      - {name: urgent, when: {lead_source: demo_request}, policy: write_back}
    fallback: watch
"""


@dataclass(frozen=True)
class PortalFigures:
    portal_id: int
    requests: int
    searches: int
    max_per_window: int
    max_searches_per_window: int
    rejected: int


def seed(engine: Engine, fake: FakeHubSpot, contacts: int, share: float, now: datetime) -> int:
    """Contacts in the fake and their creation webhooks in the database; returns write-backs."""
    per_portal = contacts // len(PORTALS)
    every = max(1, round(1 / share)) if share > 0 else 0
    urgent = 0
    for portal_id in PORTALS:
        crm = fake.portal(portal_id)
        crm.add_owner("501", "rep@example.com", "Rep", "One")
        events = []
        for i in range(1, per_portal + 1):
            hot = bool(every) and i % every == 0
            urgent += hot
            props = {
                # Breached a few minutes ago: the escalation writes back as soon as the lead is
                # routed (steps due over an hour before a lead is first seen are skipped).
                "createdate": (now - timedelta(minutes=5)).isoformat(),
                "hubspot_owner_id": "501",
                "lead_source": "demo_request" if hot else "web",
            }
            crm.add_contact(str(i), props, updated_at=now - timedelta(days=3))
            events.append(
                {
                    "eventId": i,
                    "subscriptionId": 1,
                    "portalId": portal_id,
                    "occurredAt": to_epoch_ms(now - timedelta(minutes=5)),
                    "subscriptionType": "contact.creation",
                    "attemptNumber": 0,
                    "objectId": i,
                    "changeSource": "CRM",
                }
            )
        for start in range(0, len(events), 100):
            body = json.dumps(events[start : start + 100]).encode()
            store_batch(
                engine, body=body, source="webhooks_api", signature_version="v1", received_at=now
            )
    return urgent


def worker_env(db_url: str, fake: FakeHubSpot, workdir: Path, budget: str, search: str) -> dict:
    """Settings of each worker: both portals as private apps in a portals file."""
    (workdir / "rules").mkdir(exist_ok=True)
    (workdir / "rules" / "rules.yaml").write_text(RULES)
    entries = []
    for portal_id in PORTALS:
        token = f"pat-bench-{portal_id}"
        fake.add_portal(portal_id, token=token)
        (workdir / f"{portal_id}.token").write_text(token)
        entries.append({"portal_id": portal_id, "access_token_file": f"{portal_id}.token"})
    (workdir / "portals.json").write_text(json.dumps({"portals": entries}))
    return {
        "DATABASE_URL": db_url,
        "HUBSPOT_CLIENT_SECRET": SECRET,
        "HUBSPOT_PORTALS_FILE": str(workdir / "portals.json"),
        "HUBSPOT_API_BASE_URL": fake.base_url,
        "HUBSPOT_RATE_LIMIT": budget,
        "HUBSPOT_SEARCH_RATE_LIMIT": search,
        "SLA_BOT_RULES_DIR": str(workdir / "rules"),
        "SLA_BOT_RECONCILE_INTERVAL_SECONDS": "10",
        "SLA_BOT_WORKER_INTERVAL_SECONDS": "0.2",
        "SLA_BOT_LOG_LEVEL": "WARNING",
    }


def progress(engine: Engine) -> tuple[int, int, int]:
    """(leads not fetched or not decided yet, HubSpot rows sent, HubSpot rows not sent)."""
    with engine.connect() as conn:
        marked = conn.execute(
            select(func.count())
            .select_from(leads)
            .where((leads.c.needs_fetch == 1) | (leads.c.next_due_at <= datetime.now(UTC)))
        ).scalar_one()
        rows = dict(
            conn.execute(
                select(outbox.c.status, func.count())
                .where(outbox.c.channel == "hubspot")
                .group_by(outbox.c.status)
            ).all()
        )
    sent = rows.pop("sent", 0)
    return marked, sent, sum(rows.values())


def figures(fake: FakeHubSpot, window: float, search_window: float) -> list[PortalFigures]:
    out = []
    for portal_id in PORTALS:
        p = fake.portal(portal_id)
        out.append(
            PortalFigures(
                portal_id,
                sum(1 for _, s, _ in p.arrivals if not s),
                sum(1 for _, s, _ in p.arrivals if s),
                p.windows_max(window),
                p.windows_max(search_window, search=True),
                p.rejected,
            )
        )
    return out


def run(
    db_url: str,
    workdir: Path,
    *,
    contacts: int,
    budget: str,
    search: str,
    share: float,
    timeout: float,
    workers: int = 2,
) -> tuple[list[PortalFigures], float, int]:
    """The whole scenario; returns the per-portal figures, seconds taken and write-backs."""
    from tests.engine.processes import WorkerProcess

    n, window = parse_rate(budget)
    s, search_window = parse_rate(search)
    fake = FakeHubSpot(
        token="pat-bench-unused",
        rate_limit_max=n,
        rate_window=window,
        search_limit=s,
        search_window=search_window,
    ).start()
    fake.enforce_rate_limit = True
    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine)
        env = worker_env(db_url, fake, workdir, budget, search)
        urgent = seed(engine, fake, contacts, share, datetime.now(UTC))
        procs = [WorkerProcess(env, workdir, f"worker{i}").start() for i in range(workers)]
        started = time.monotonic()
        try:
            deadline = started + timeout
            while True:
                marked, sent, waiting = progress(engine)
                if marked == 0 and sent >= urgent and waiting == 0:
                    break
                dead = [p for p in procs if not p.alive()]
                if dead or time.monotonic() > deadline:
                    log = procs[0].log.read_text()[-3000:]
                    raise AssertionError(f"stuck at {(marked, sent, waiting)}; worker log:\n{log}")
                time.sleep(0.2)
            took = time.monotonic() - started
        finally:
            for p in procs:
                p.stop()
        return figures(fake, window, search_window), took, urgent
    finally:
        engine.dispose()
        fake.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=5000)
    parser.add_argument("--budget", default="100/10s", help="per portal, as HUBSPOT_RATE_LIMIT")
    parser.add_argument("--search", default="4/1s", help="per portal, search API")
    parser.add_argument("--writeback-share", type=float, default=0.1)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args(argv)
    base = os.environ.get("SLA_BOT_TEST_DATABASE_URL")
    if not base:
        print("set SLA_BOT_TEST_DATABASE_URL to a PostgreSQL URL", file=sys.stderr)
        return 2
    from tests.conftest import pg_schema_url

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            found, took, urgent = run(
                pg_schema_url(base, schema),
                Path(tmp),
                contacts=args.contacts,
                budget=args.budget,
                search=args.search,
                share=args.writeback_share,
                timeout=args.timeout,
            )
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    n, window = parse_rate(args.budget)
    s, search_window = parse_rate(args.search)
    print(
        f"{args.contacts} contacts, 2 portals, 2 workers, {urgent} leads written back; {took:.1f} s"
    )
    print(
        f"{'portal':>8} {'requests':>9} {'max/window':>11} {'budget':>7} {'ratio':>6} "
        f"{'searches':>9} {'max/window':>11} {'budget':>7} {'429s':>5}"
    )
    for f in found:
        print(
            f"{f.portal_id:>8} {f.requests:>9} {f.max_per_window:>11} {n:>7} "
            f"{f.max_per_window / n:>6.2f} {f.searches:>9} {f.max_searches_per_window:>11} "
            f"{s:>7} {f.rejected:>5}"
        )
    print(f"(windows: {window:g} s general, {search_window:g} s search)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
