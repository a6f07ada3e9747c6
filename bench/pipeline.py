"""The whole pipeline under load: signed webhooks in, Slack posts out, through the real processes.

Four parts (`--parts`, all by default); each prints its figures and the ratio against its goal:

- lag:     `sla-bot serve` (SQLite) receives workflow-style v2 webhooks (properties included, so no
           HubSpot fetch) for `--leads` leads whose first-touch deadlines fall at known wall-clock
           times, spread over `--spread` seconds across 50 reps and 5 team channels (each breach
           DMs the owner and posts in the team channel), plus `--burst` leads due at the same
           instant in one channel. The fake Slack (a local server in this process) enforces
           ~1 message/s per conversation with 429 + Retry-After, and stamps each post's arrival:
           lag = arrival - deadline. Goals: p99 <= 2 s (spread); in the one-channel burst only
           Slack's pacing adds lag (the n-th post of the burst can not go out before n-1 s).
- scaling: on PostgreSQL, `sla-bot web` + 1, 2 and 4 `sla-bot worker` processes; `--scale-leads`
           leads due at one instant (one DM each, to 50 reps). decisions/s = leads decided /
           (last decision committed - deadline); deliveries/s = posts / (last post - first
           post), bounded by Slack's pacing of 50 conversations (~50/s).
           Goal: 2 workers >= 1.6x one. Duplicate outbox keys and duplicate posts are counted.
           The deadline leaves time to route every lead first (the count is printed).
- rss:     open leads seeded in bulk with SQL (`--rss-sizes`, 10k and 1M), 100 of them due;
           `sla-bot web` + one `sla-bot worker` run until those are posted (a sweep ran), then
           the resident memory of each process. Goal: RSS(1M) / RSS(10k) <= 1.1.
- budget:  bench.portal_budget's contact backfill (`--budget-contacts`) with two workers against
           the fake HubSpot enforcing the budget: most requests in any 10-s window per portal,
           and 429s. Goal: never over budget, 0 429s.

    python -m bench.pipeline                 # real sizes (~45 min on 2 shared cores)
    python -m bench.pipeline --quick         # small sizes (~5 min)
    python -m bench.pipeline --parts lag --leads 500 --spread 120

PostgreSQL: `--pg URL` (default $SLA_BOT_BENCH_DATABASE_URL, else
postgresql+psycopg://postgres@127.0.0.1:5432/bench_pipeline; the database is created if missing,
each part uses a fresh schema and drops it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from integrations.slack.fake import FakeSlack
from sla_bot.db.engine import make_engine
from sla_bot.db.schema import leads, outbox
from sla_bot.rules import RulesHolder
from sla_bot.webhook_tool import PATH, signed_headers

PORTAL = 62515
SECRET = "bench-client-secret"
SLACK_TOKEN = "xoxb-bench"
REPS, CHANNELS = 50, 5
WITHIN = timedelta(hours=1)  # first touch within 1h, wall clock: deadline = createdate + 1h
NAME = re.compile(r"\bL(\d+) Bench\b")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_pipeline"


# --- the world: rules, Slack people and channels --------------------------------------------


def owner_of(rep: int) -> str:
    return str(2000 + rep)


def slack_user(rep: int) -> str:
    return f"U0REP{rep:05d}"


def channel_id(team: str) -> str:
    return f"C0{team.upper():0>9}"[:11]


def rules_yaml() -> str:
    """5 teams of 10 reps with a channel each, a team of all 50, and a burst team; 24/7."""

    def members(reps: range) -> str:
        return "\n".join(
            f'      - {{name: Rep {r}, owner_id: "{owner_of(r)}", email: rep{r}@bench.test}}'
            for r in reps
        )

    per = REPS // CHANNELS
    teams = {f"t{i}": range(i * per, (i + 1) * per) for i in range(CHANNELS)}
    teams |= {"all": range(REPS), "burst": range(per)}
    out = [
        "settings: {default_calendar: always}",
        "calendars:",
        "  always: {timezone: UTC, hours: 24/7}",
        "teams:",
    ]
    for team, reps in teams.items():
        out += [
            f"  {team}:",
            f'    channel: "{channel_id(team)}"',
            "    managers: [{name: Manager, email: manager@bench.test}]",
            "    members:",
            members(reps),
        ]
    policies = {f"spread{i}": (f"t{i}", "[notify_owner, notify_channel]") for i in range(CHANNELS)}
    policies |= {"burst": ("burst", "[notify_channel]"), "dm": ("all", "[notify_owner]")}
    out.append("policies:")
    for name, (team, do) in policies.items():
        out += [
            f"  {name}:",
            f"    team: {team}",
            "    first_touch: {within: 1h, clock_starts: created, on_assignment: []}",
            f"    escalation: [{{after: 0m, do: {do}}}]",
            "    quiet_hours: {outside_calendar: false}",
        ]
    out += ["routing:", "  all:", "    leads:"]
    out += [f"      - {{name: {p}, when: {{lead_source: {p}}}, policy: {p}}}" for p in policies]
    out.append("    fallback: ignore")
    return "\n".join(out) + "\n"


def fake_slack() -> FakeSlack:
    fake = FakeSlack(token=SLACK_TOKEN).start()
    for r in range(REPS):
        fake.add_user(slack_user(r), f"rep{r}@bench.test", f"Rep {r}")
    fake.add_user("U0MANAGER1", "manager@bench.test", "Manager")
    for team in [*(f"t{i}" for i in range(CHANNELS)), "all", "burst"]:
        fake.add_channel(channel_id(team), f"bench-{team}")
    fake.limit_channel_rate(interval=1.0, burst=2)
    return fake


@dataclass(frozen=True)
class Lead:
    object_id: int
    deadline: float  # epoch seconds
    policy: str
    rep: int

    def body(self) -> bytes:
        created = datetime.fromtimestamp(self.deadline, UTC) - WITHIN
        props = {
            "createdate": created.isoformat().replace("+00:00", "Z"),
            "hubspot_owner_id": owner_of(self.rep),
            "lead_source": self.policy,
            "firstname": f"L{self.object_id}",
            "lastname": "Bench",
        }
        return json.dumps({"objectId": self.object_id, "portalId": PORTAL, "properties": props})


def send_webhooks(base_url: str, batch: list[Lead], threads: int = 4) -> float:
    """POST one signed v2 workflow webhook per lead (earliest deadline first); returns seconds."""
    url = base_url + PATH
    todo = iter(sorted(batch, key=lambda lead: lead.deadline))
    lock, failures = threading.Lock(), []

    def loop() -> None:
        session = requests.Session()
        while True:
            with lock:
                lead = next(todo, None)
            if lead is None:
                return
            body = lead.body().encode()
            headers = signed_headers(
                body, url=url, secret=SECRET, now=datetime.now(UTC), version="v2"
            )
            answer = session.post(url, data=body, headers=headers, timeout=30)
            if answer.status_code != 200:
                failures.append(f"{lead.object_id}: {answer.status_code} {answer.text[:200]}")

    started = time.monotonic()
    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if failures:
        raise RuntimeError(f"{len(failures)} webhooks refused, e.g. {failures[:3]}")
    return time.monotonic() - started


# --- what the fake Slack saw ----------------------------------------------------------------


@dataclass
class Posts:
    lags: dict[str, list[float]]  # policy -> lags (s) of accepted posts
    by_lead: dict[int, list[float]]  # object id -> lags (s) of its accepted posts
    accepted: int
    rejected_429: int
    duplicates: int
    first: float
    last: float


def posts(fake: FakeSlack, deadlines: dict[int, Lead]) -> Posts:
    lags: dict[str, list[float]] = {}
    by_lead: dict[int, list[float]] = {}
    seen: Counter[tuple[int, str]] = Counter()
    rejected = first = last = 0
    accepted = 0
    for call in fake.calls_to("chat.postMessage"):
        if call.status == 429:
            rejected += 1
            continue
        if not call.applied:
            continue
        found = NAME.search(str(call.args.get("text") or ""))
        if not found or int(found.group(1)) not in deadlines:
            continue
        lead = deadlines[int(found.group(1))]
        accepted += 1
        seen[(lead.object_id, str(call.args.get("channel")))] += 1
        lags.setdefault(lead.policy, []).append(call.at - lead.deadline)
        by_lead.setdefault(lead.object_id, []).append(call.at - lead.deadline)
        first = min(first or call.at, call.at)
        last = max(last, call.at)
    dupes = sum(n - 1 for n in seen.values() if n > 1)
    return Posts(lags, by_lead, accepted, rejected, dupes, first, last)


def lags_of(got: Posts, lead: Lead) -> list[float]:
    return got.by_lead.get(lead.object_id, [])


def wait_posts(fake: FakeSlack, deadlines: dict[int, Lead], want: int, until: float) -> Posts:
    while True:
        got = posts(fake, deadlines)
        if got.accepted >= want or time.time() > until:
            return got
        time.sleep(0.5)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


# --- processes ---------------------------------------------------------------------------------


def base_env(workdir: Path, fake: FakeSlack, db_url: str) -> dict[str, str]:
    rules = workdir / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "rules.yaml").write_text(rules_yaml())
    return {
        "DATABASE_URL": db_url,
        "HUBSPOT_CLIENT_SECRET": SECRET,
        "SLACK_BOT_TOKEN": SLACK_TOKEN,
        "SLACK_API_BASE_URL": fake.base_url,
        "SLA_BOT_RULES_DIR": str(rules),
        "SLA_BOT_LOG_LEVEL": "WARNING",
        "SLA_BOT_WEB_WORKERS": "2",
        "PYTHONPATH": str(ROOT),
    }


def sla_bot(command: list[str], env: dict[str, str], cwd: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "sla_bot", *command],
        env={**os.environ, **env},
        cwd=cwd,
        check=True,
        capture_output=True,
    )


@contextmanager
def processes(env: dict[str, str], cwd: Path, *, serve: bool, workers: int = 0) -> Iterator[str]:
    """`serve`, or `web` + `workers` x `worker`; yields the base URL; stops them all."""
    from tests.engine.processes import WorkerProcess
    from tests.service_process import ServiceProcess, free_port

    web = ServiceProcess("serve" if serve else "web", env, cwd, free_port())
    started: list[ServiceProcess | WorkerProcess] = []
    try:
        started.append(web.start(timeout=120))
        for i in range(workers):
            started.append(WorkerProcess(env, cwd, f"worker{i}").start())
        yield web.url
    finally:
        for p in started:
            p.stop()


def pids(cwd: Path, url: str) -> dict[str, list[int]]:
    """Every process of this run by role, read from /proc (gunicorn forks its workers)."""
    del url
    found: dict[str, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            if os.readlink(entry / "cwd") != str(cwd):
                continue
        except OSError:
            continue
        if b"sla_bot" in cmd or any(b"gunicorn" in c for c in cmd):
            role = next((c.decode() for c in cmd if c in (b"web", b"worker", b"serve")), "web")
            found.setdefault(role, []).append(int(entry.name))
    return found


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- PostgreSQL --------------------------------------------------------------------------------


@contextmanager
def pg_schema(base: str) -> Iterator[str]:
    from tests.conftest import pg_schema_url

    url = make_url(base)
    admin = make_engine(url.set(database="postgres").render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if not conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": url.database}
        ).first():
            conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    owner = make_engine(base)
    with owner.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield pg_schema_url(base, schema)
    finally:
        with owner.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        owner.dispose()


# --- the parts -----------------------------------------------------------------------------------


def outbox_stages(db_url: str) -> dict[str, list[float]]:
    """Where the lag goes: deadline -> decided (the sweep), deadline -> marked sent."""
    engine = make_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.due_at, outbox.c.decided_at, outbox.c.sent_at).where(
                outbox.c.channel == "slack"
            )
        ).all()
    engine.dispose()
    stages: dict[str, list[float]] = {"deadline->decided": [], "deadline->sent": []}
    for due, decided, sent in rows:
        if due is not None:
            stages["deadline->decided"].append((decided - due).total_seconds())
            if sent is not None:
                stages["deadline->sent"].append((sent - due).total_seconds())
    return {k: v for k, v in stages.items() if v}


def part_lag(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        fake = fake_slack()
        env = base_env(workdir, fake, f"sqlite:///{workdir / 'bench.db'}")
        sla_bot(["db", "upgrade"], env, workdir)
        try:
            with processes(env, workdir, serve=True) as url:
                lead_in = args.lead_in or 20 + args.leads / 40
                t0 = time.time() + lead_in
                batch = [
                    Lead(
                        i + 1,
                        t0 + args.spread * i / args.leads,
                        f"spread{i % CHANNELS}",
                        (i % CHANNELS) * (REPS // CHANNELS) + (i // CHANNELS) % (REPS // CHANNELS),
                    )
                    for i in range(args.leads)
                ]
                burst_at = t0 + args.spread / 2
                batch += [
                    Lead(100_000 + i, burst_at, "burst", i % (REPS // CHANNELS))
                    for i in range(args.burst)
                ]
                took = send_webhooks(url, batch)
                late = time.time() > t0
                print(
                    f"lag: {len(batch)} webhooks posted in {took:.1f} s "
                    f"({len(batch) / took:.0f}/s); first deadline "
                    f"{'ALREADY PASSED' if late else f'{t0 - time.time():.0f} s ahead'}",
                    flush=True,
                )
                want = 2 * args.leads + args.burst
                until = max(t0 + args.spread, burst_at + args.burst) + 180
                got = wait_posts(fake, {lead.object_id: lead for lead in batch}, want, until)
            stages = outbox_stages(env["DATABASE_URL"])
        finally:
            fake.stop()
    spread = [v for k, vs in got.lags.items() if k.startswith("spread") for v in vs]
    burst = sorted(got.lags.get("burst", []))
    print(f"lag: {got.accepted}/{want} posts, {got.rejected_429} 429s, {got.duplicates} duplicates")
    if spread:
        p50, p99 = pct(spread, 50), pct(spread, 99)
        print(
            f"lag spread ({args.leads} leads over {args.spread:g} s, {REPS} reps, {CHANNELS} "
            f"channels; DM + channel post each): p50 {p50:.2f} s, p99 {p99:.2f} s, "
            f"max {max(spread):.2f} s  (goal p99 <= 2 s: {p99 / 2:.2f}x)"
        )
    print(
        "lag stages (all rows): "
        + "; ".join(f"{k} p50 {pct(v, 50):.2f} s p99 {pct(v, 99):.2f} s" for k, v in stages.items())
    )
    if spread and burst:
        # Spread posts due while the burst's channel is paced, against the others.
        start, end = burst_at, burst_at + len(burst)
        during = [
            lag
            for lead in batch
            if lead.policy != "burst" and start <= lead.deadline <= end
            for lag in lags_of(got, lead)
        ]
        outside = [
            lag
            for lead in batch
            if lead.policy != "burst" and not start <= lead.deadline <= end
            for lag in lags_of(got, lead)
        ]
        if during and outside:
            print(
                f"lag spread, deadlines during the burst's {len(burst)} s: p50 "
                f"{pct(during, 50):.2f} s, p99 {pct(during, 99):.2f} s ({len(during)} posts); "
                f"outside it: p50 {pct(outside, 50):.2f} s, p99 {pct(outside, 99):.2f} s"
            )
    if burst:
        # The n-th post of a burst in one channel can not go out before n-1 s (Slack's pacing).
        extra = [lag - n for n, lag in enumerate(burst)]
        print(
            f"lag burst ({args.burst} leads due at once, one channel): p50 {pct(burst, 50):.2f} s, "
            f"p99 {pct(burst, 99):.2f} s, last {burst[-1]:.2f} s; pacing alone: last "
            f"{len(burst) - 1:.0f} s; added beyond pacing p50 {statistics.median(extra):.2f} s, "
            f"max {max(extra):.2f} s"
        )


POLL = 0.05


def decision_times(engine: Any, n: int, until: float) -> tuple[float, float]:
    """When the first and the n-th outbox row became visible (committed), polled every 50 ms:
    decided_at is the sweep's `now`, the same for a whole pass, so it can not time one."""
    first = 0.0
    while True:
        with engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
        now = time.time()
        if count and not first:
            first = now - POLL / 2
        if count >= n or now > until:
            return first or now, now
        time.sleep(POLL)


def part_scaling(args: argparse.Namespace) -> None:
    results: dict[int, tuple[float, float]] = {}
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as tmp, pg_schema(args.pg) as db_url:
            workdir = Path(tmp)
            fake = fake_slack()
            env = base_env(workdir, fake, db_url)
            sla_bot(["db", "upgrade"], env, workdir)
            try:
                with processes(env, workdir, serve=False, workers=workers) as url:
                    n = args.scale_leads
                    # Enough time to take in and route every lead before they fall due.
                    due = time.time() + (args.lead_in or 30 + n / 15)
                    batch = [Lead(i + 1, due, "dm", i % REPS) for i in range(n)]
                    took = send_webhooks(url, batch)
                    engine = make_engine(db_url)
                    time.sleep(max(0.0, due - 0.5 - time.time()))
                    with engine.connect() as conn:
                        ready = conn.execute(
                            select(func.count()).select_from(leads).where(leads.c.policy == "dm")
                        ).scalar_one()
                    first_at, last_at = decision_times(engine, n, due + 300)
                    got = wait_posts(fake, {b.object_id: b for b in batch}, n, due + 600)
                    with engine.connect() as conn:
                        dup_keys = conn.execute(
                            select(func.count()).select_from(
                                select(outbox.c.idempotency_key)
                                .group_by(outbox.c.idempotency_key)
                                .having(func.count() > 1)
                                .subquery()
                            )
                        ).scalar_one()
                        rows = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
                    engine.dispose()
            finally:
                fake.stop()
        # From the deadline to the last decision committed: includes the wait for the next
        # sweep tick (up to SLA_BOT_WORKER_INTERVAL_SECONDS), as a lead's lag does.
        decide_s = last_at - due
        deliver_s = (got.last - got.first) or float("nan")
        results[workers] = (n / decide_s, got.accepted / deliver_s)
        print(
            f"scaling: {workers} worker(s): {n} webhooks in {took:.1f} s, {ready}/{n} leads "
            f"routed before the deadline; {rows} outbox rows, {dup_keys} duplicate keys; "
            f"{got.accepted} posts, {got.duplicates} duplicate posts, {got.rejected_429} 429s; "
            f"first decision committed {first_at - due:.2f} s after the deadline, the last "
            f"{decide_s:.2f} s after it ({n / decide_s:.0f} decisions/s), posted in "
            f"{deliver_s:.1f} s ({got.accepted / deliver_s:.0f} deliveries/s)",
            flush=True,
        )
    if 1 in results:
        one = results[1]
        for workers, (dec, dlv) in sorted(results.items()):
            print(
                f"scaling: {workers} worker(s) vs 1: decisions {dec / one[0]:.2f}x, "
                f"deliveries {dlv / one[1]:.2f}x" + ("  (goal 2 workers >= 1.6x)" * (workers == 2))
            )


SEED = """
INSERT INTO leads (portal_id, object_id, status, policy, policy_hash, policy_snapshot,
                   rules_version, owner_id, created_at, clock_started_at, properties,
                   next_due_at, updated_at)
SELECT :portal, g, 'open', 'dm', :phash, :snap, :version, (2000 + g % 50)::text, c, c,
       json_build_object('createdate', to_char(c, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                         'hubspot_owner_id', (2000 + g % 50)::text,
                         'firstname', 'L' || g, 'lastname', 'Bench',
                         'lead_source', 'dm')::text,
       c + interval '1 hour', now()
FROM (SELECT g, CASE WHEN g <= :due THEN CAST(:soon AS timestamptz)
                      ELSE CAST(:later AS timestamptz) END AS c
      FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS g) AS s
"""


def seed_sql(db_url: str, workdir: Path, size: int, due: int, due_at: datetime) -> float:
    holder = RulesHolder(workdir / "rules")
    holder.reload_if_changed()
    loaded = holder.current()
    engine = make_engine(db_url)
    started = time.monotonic()
    params = {
        "portal": PORTAL,
        "phash": loaded.policy_hash("dm"),
        "snap": json.dumps(loaded.policy_snapshot("dm"), sort_keys=True),
        "version": loaded.version,
        "due": due,
        "soon": due_at - WITHIN,
        "later": due_at + timedelta(days=1),
    }
    for first in range(1, size + 1, 100_000):
        with engine.begin() as conn:
            conn.execute(text(SEED), {**params, "first": first, "last": min(size, first + 99_999)})
    with engine.begin() as conn:
        conn.execute(text("ANALYZE leads"))
    engine.dispose()
    return time.monotonic() - started


def part_rss(args: argparse.Namespace) -> None:
    found: dict[int, dict[str, float]] = {}
    due = 100
    for size in args.rss_sizes:
        with tempfile.TemporaryDirectory() as tmp, pg_schema(args.pg) as db_url:
            workdir = Path(tmp).resolve()
            fake = fake_slack()
            env = base_env(workdir, fake, db_url)
            sla_bot(["db", "upgrade"], env, workdir)
            due_at = datetime.now(UTC) + timedelta(seconds=20)
            seeded = seed_sql(db_url, workdir, size, due, due_at)
            batch = {i: Lead(i, due_at.timestamp(), "dm", i % REPS) for i in range(1, due + 1)}
            try:
                with processes(env, workdir, serve=False, workers=1) as url:
                    got = wait_posts(fake, batch, due, due_at.timestamp() + 300)
                    for _ in range(5):  # the web side: metrics (gauges over the leads table)
                        requests.get(url + "/metrics", timeout=60)
                    time.sleep(3)  # at least one more sweep and delivery tick
                    procs = pids(workdir, url)
                    web = [rss_mb(p) for p in procs.get("web", [])]
                    worker = [rss_mb(p) for p in procs.get("worker", [])]
            finally:
                fake.stop()
        found[size] = {"worker": max(worker or [0]), "web": max(web or [0])}
        print(
            f"rss: {size} open leads (seeded in {seeded:.0f} s; {got.accepted}/{due} due posted): "
            f"worker {max(worker or [0]):.0f} MB; web {len(web)} processes, largest "
            f"{max(web or [0]):.0f} MB, total {sum(web):.0f} MB",
            flush=True,
        )
    small, big = min(found), max(found)
    if small != big:
        for role in ("worker", "web"):
            ratio = found[big][role] / found[small][role]
            print(f"rss: {role} RSS({big})/RSS({small}) = {ratio:.2f}  (goal <= 1.1)")


def part_budget(args: argparse.Namespace) -> None:
    from bench import portal_budget
    from sla_bot.config import parse_rate

    with tempfile.TemporaryDirectory() as tmp, pg_schema(args.pg) as db_url:
        found, took, urgent = portal_budget.run(
            db_url,
            Path(tmp),
            contacts=args.budget_contacts,
            budget="100/10s",
            search="4/1s",
            share=0.1,
            timeout=1800,
            workers=2,
        )
    n, window = parse_rate("100/10s")
    print(
        f"budget: {args.budget_contacts} contacts backfilled by 2 workers ({urgent} written back) "
        f"in {took:.0f} s"
    )
    for f in found:
        print(
            f"budget: portal {f.portal_id}: {f.requests} requests, most in one {window:g}-s "
            f"window {f.max_per_window} of {n} ({f.max_per_window / n:.2f}x budget), "
            f"{f.max_searches_per_window} searches in one 1-s window of 4, {f.rejected} 429s "
            f"(goal <= 1.00x, 0)"
        )


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    load = os.getloadavg()
    return (
        f"machine: {os.cpu_count()} CPUs ({model}), load average {load[0]:.1f}; "
        f"Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="lag,scaling,rss,budget")
    parser.add_argument("--quick", action="store_true", help="small sizes: a run of minutes")
    parser.add_argument("--leads", type=int, help="spread case (default 2000; quick 200)")
    parser.add_argument("--spread", type=float, help="seconds (default 600; quick 60)")
    parser.add_argument("--burst", type=int, help="leads due at once in one channel (100; 20)")
    parser.add_argument("--lead-in", type=float, help="seconds from posting to first deadline")
    parser.add_argument("--scale-leads", type=int, help="leads due at once (1000; quick 300)")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--rss-sizes", help="open leads (10000,1000000; quick 10000,100000)")
    parser.add_argument("--budget-contacts", type=int, help="backfill (10000; quick 1000)")
    parser.add_argument("--pg", default=os.environ.get("SLA_BOT_BENCH_DATABASE_URL", DEFAULT_PG))
    args = parser.parse_args(argv)
    q = args.quick
    args.leads = args.leads or (200 if q else 2000)
    args.spread = args.spread or (60.0 if q else 600.0)
    args.burst = args.burst if args.burst is not None else (20 if q else 100)
    args.scale_leads = args.scale_leads or (300 if q else 1000)
    args.workers = [int(w) for w in args.workers.split(",")]
    sizes = args.rss_sizes or ("10000,100000" if q else "10000,1000000")
    args.rss_sizes = [int(s) for s in sizes.split(",")]
    args.budget_contacts = args.budget_contacts or (1000 if q else 10000)
    print(machine(), flush=True)
    parts = {"lag": part_lag, "scaling": part_scaling, "rss": part_rss, "budget": part_budget}
    for name in args.parts.split(","):
        started = time.monotonic()
        parts[name](args)
        print(f"({name}: {time.monotonic() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
