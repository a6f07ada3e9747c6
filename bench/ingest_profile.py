"""Where the webhook request's CPU goes: the real app, called in-process, profiled by py-spy.

Builds the production app (same Services, SQLite `synchronous=FULL` or PostgreSQL, multiprocess
Prometheus metrics), pre-builds N distinct v3-signed 100-event requests, then calls the WSGI app
directly (no HTTP, no test client) and prints CPU and wall time per request. With --py-spy it
runs itself under `py-spy record` and prints the top functions by own ("self") and inclusive
samples, as in docs/performance.md.

    python bench/ingest_profile.py --requests 2000
    python bench/ingest_profile.py --requests 2000 --py-spy
    python bench/ingest_profile.py --database-url postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EVENTS_PER_BATCH = 100


def _run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="sla-bot-profile-"))
    from werkzeug.test import EnvironBuilder

    from sla_bot.server import use_metrics_dir

    # Where `sla-bot serve` puts them (/dev/shm), before prometheus is imported.
    use_metrics_dir(workdir)

    from sla_bot.clock import SystemClock
    from sla_bot.db import migrate
    from sla_bot.services import Services
    from sla_bot.web.app import create_app
    from tests.conftest import make_settings
    from tests.signing import event, signed_headers

    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    settings = make_settings(DATABASE_URL=url, SLA_BOT_SQLITE_SYNCHRONOUS=args.sqlite_synchronous)
    services = Services.from_settings(settings, SystemClock())
    migrate.upgrade(services.engine)
    app = create_app(services=services)
    now = datetime.now(UTC)
    stamp = int(time.time())
    environs = []
    for i in range(args.requests):
        base = ((stamp % 1_000_000) * 10_000 + i) * EVENTS_PER_BATCH
        body = json.dumps(
            [event(base + j, object_id=base + j) for j in range(EVENTS_PER_BATCH)]
        ).encode()
        headers = signed_headers(body, now=now, url="http://localhost/webhooks/hubspot")
        env = EnvironBuilder(
            path="/webhooks/hubspot", method="POST", data=body, headers=headers
        ).get_environ()
        env["wsgi.input"] = io.BytesIO(body)
        environs.append(env)

    statuses: collections.Counter[str] = collections.Counter()

    def start_response(status: str, _headers: object, _exc: object = None) -> None:
        statuses[status] += 1

    cpu0, wall0 = time.process_time(), time.perf_counter()
    for env in environs:
        for _ in app(env, start_response):
            pass
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    n = args.requests
    print(f"database: {url.split('@')[-1]}  statuses: {dict(statuses)}")
    print(
        f"{n} requests: {cpu / n * 1000:.2f} ms CPU and {wall / n * 1000:.2f} ms wall per "
        f"request ({EVENTS_PER_BATCH} events each), one process"
    )
    services.engine.dispose()
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def _top(raw: Path, limit: int) -> None:
    """Aggregate py-spy's raw (collapsed) stacks into self and inclusive shares."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "receive (sla_bot/web" not in stack and "_observe" not in stack:
            continue  # only the request path, not set-up
        n = int(count)
        total += n
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0] for f in stack.split(";")
        ]
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    print(f"\nrequest path samples: {total}")
    print("top by own time:")
    for name, n in own.most_common(limit):
        print(f"  {n / total:6.1%}  {name}")
    print("top by inclusive time:")
    for name, n in incl.most_common(limit * 2):
        print(f"  {n / total:6.1%}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--database-url", default=None, help="default: a temp SQLite file")
    parser.add_argument("--sqlite-synchronous", default="FULL", choices=["FULL", "NORMAL"])
    parser.add_argument("--py-spy", action="store_true", help="profile with py-spy (pip)")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    if not args.py_spy:
        _run(args)
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    raw = Path(tempfile.mkdtemp(prefix="sla-bot-pyspy-")) / "raw.txt"
    argv = [a for a in sys.argv[1:] if a != "--py-spy"]
    cmd = [spy, "record", "-r", "500", "--gil", "-f", "raw", "-o", str(raw), "--"]
    subprocess.run([*cmd, sys.executable, __file__, *argv], check=True)
    _top(raw, args.top)
    shutil.rmtree(raw.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
