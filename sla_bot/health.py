"""`sla-bot health`: is this container's sla-bot working? The image's HEALTHCHECK runs it.

One command for every role: `serve` and `web` answer on their port, so their /readyz is asked
(for `serve` that includes its worker's heartbeat); a `worker` has no port, so its own
heartbeat row (this host, a live pid) must be recent. Without --web or --worker it asks the
port first and falls back to the worker check when nothing listens there.

Exit status: 0 healthy, 1 not (Docker reserves 2).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import urllib.error
import urllib.request
from typing import Any

HEALTHY, UNHEALTHY = 0, 1
# A worker's own check when SLA_BOT_WORKER_STALE_SECONDS=0 turns /readyz's off.
DEFAULT_STALE = 60.0


HELP = "exit 0 if this sla-bot (serve, web or worker) is working (Docker HEALTHCHECK)"


def register(sub: Any) -> None:
    """`sla-bot --help` lists it; `sla-bot health ...` itself is parsed by `main`."""
    _arguments(sub.add_parser("health", help=HELP, description=DESCRIPTION))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sla-bot health", description=DESCRIPTION)
    _arguments(parser)
    return run(parser.parse_args(argv))


def _arguments(p: argparse.ArgumentParser) -> None:
    role = p.add_mutually_exclusive_group()
    role.add_argument("--web", action="store_true", help="only ask /readyz (serve or web)")
    role.add_argument("--worker", action="store_true", help="only check this host's worker")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds for /readyz (default 3)")
    p.set_defaults(func=run)


DESCRIPTION = (
    "Check the sla-bot running here: `serve` and `web` through GET /readyz on "
    "SLA_BOT_PORT, a `worker` through its own heartbeat in the database (recent, from a "
    "live process on this host). Without --web or --worker: /readyz if something listens "
    "on the port, else the worker check. Exit 0 if healthy, 1 if not, saying why."
)


def run(args: argparse.Namespace) -> int:
    from sla_bot.config import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        return _say(UNHEALTHY, f"configuration: {exc}")
    if not args.worker:
        host = _local(settings.host)
        status, detail = readyz(host, settings.port, args.timeout)
        if status is not None or args.web:
            if status == 200:
                return _say(HEALTHY, f"/readyz on {host}:{settings.port}: ready")
            why = detail if status is None else f"answered {status}: {detail}"
            return _say(UNHEALTHY, f"/readyz on {host}:{settings.port} {why}")
    return worker_health(settings)


def _local(bind: str) -> str:
    """Where to reach a server bound to `bind` from inside its own container."""
    if bind in ("0.0.0.0", ""):
        return "127.0.0.1"
    if bind in ("::", "[::]"):
        return "::1"
    return bind


def readyz(host: str, port: int, timeout: float) -> tuple[int | None, str]:
    """(HTTP status, what it said) or (None, why nothing answered)."""
    netloc = f"[{host}]" if ":" in host else host
    try:
        with urllib.request.urlopen(f"http://{netloc}:{port}/readyz", timeout=timeout) as r:
            return r.status, "ready"
    except urllib.error.HTTPError as exc:
        return exc.code, _not_ready(exc.read())
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, f"did not answer: {reason}"


def _not_ready(body: bytes) -> str:
    """The failing checks of a 503 /readyz, in one line."""
    try:
        checks = json.loads(body)["checks"]
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace")
    bad = {k: v for k, v in checks.items() if v != "ok" and not _ok(v)}
    return json.dumps(bad or checks)


def _ok(value: Any) -> bool:
    return isinstance(value, dict) and value.get("status") == "ok"


def worker_health(settings: Any) -> int:
    from sla_bot import heartbeat
    from sla_bot.db.engine import make_engine

    stale_after = settings.worker_stale_seconds or DEFAULT_STALE
    host = socket.gethostname()
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            latest = heartbeat.local_worker_beat(conn, host)
    except Exception as exc:  # unreachable, or no schema yet
        return _say(UNHEALTHY, f"worker: cannot read heartbeats: {type(exc).__name__}")
    finally:
        engine.dispose()
    problem = heartbeat.staleness(latest, now=heartbeat.wall_now(), stale_after=stale_after)
    if problem:
        return _say(UNHEALTHY, f"worker on {host}: {problem}")
    return _say(HEALTHY, f"worker on {host}: heartbeat {latest:%H:%M:%S} UTC")


def _say(code: int, message: str) -> int:
    print(f"{'healthy' if code == HEALTHY else 'unhealthy'}: {message}", file=sys.stdout)
    return code
