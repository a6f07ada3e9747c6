"""The `sla-bot` command line.

Imports stay inside the commands: multiprocess metrics must be configured before
prometheus_client is first imported, and `--help` should not pay for SQLAlchemy or Flask.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger("sla_bot")


def settings_from_env() -> Any:
    from sla_bot.config import ConfigError, load_settings

    try:
        return load_settings()
    except ConfigError as exc:
        print(f"sla-bot: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def start_logging(settings: Any) -> None:
    from sla_bot import logs

    logs.configure(settings.log_format, settings.log_level)
    for note in settings.capabilities():
        (log.warning if note.startswith("INSECURE") else log.info)(note)


def build_services(
    settings: Any, *, require_schema: bool = True, worker: bool = False, clock: Any = None
) -> Any:
    from sla_bot.db import migrate
    from sla_bot.web.services import Services

    services = Services.from_settings(settings, clock, worker=worker)
    if require_schema and not migrate.is_current(services.engine):
        print(
            "sla-bot: the database schema is not current; run `sla-bot db upgrade` first",
            file=sys.stderr,
        )
        raise SystemExit(2)
    services.rules = _rules_holder(settings)
    return services


def _rules_holder(settings: Any) -> Any:
    """Load the rules; refuse to start on invalid ones, then keep the last good set on edits."""
    from sla_bot import metrics
    from sla_bot.rules.holder import RulesHolder

    def refused(errors: list[Any]) -> None:
        metrics.RULES_RELOAD_ERRORS.inc()
        metrics.RULES_VALID.set(0)
        log.error(
            "rule files in %s are invalid; the last good rules stay in force:\n  %s",
            settings.rules_dir,
            "\n  ".join(str(e) for e in errors),
        )

    holder = RulesHolder(settings.rules_dir, on_error=refused)
    holder.reload_if_changed()
    if not holder.loaded:
        print(f"sla-bot: rules in {settings.rules_dir} are invalid:", file=sys.stderr)
        for err in holder.errors:
            print(f"  {err}", file=sys.stderr)
        raise SystemExit(2)
    metrics.RULES_VALID.set(1)
    return holder


def cmd_serve(args: argparse.Namespace) -> int:
    from sla_bot.server import ensure_metrics_dir

    ensure_metrics_dir()
    settings = settings_from_env()
    start_logging(settings)
    return serve(settings)


def serve(
    settings: Any,
    factory: Callable[[], Any] | None = None,
    worker_argv: Sequence[str] | None = None,
) -> int:
    """Migrate, validate the rules, then run the worker process and the web server.

    `sla-bot demo` passes its own app factory and worker command (its clock); nothing else does.
    """
    from sla_bot.db import migrate
    from sla_bot.db.engine import make_engine

    engine = make_engine(
        settings.database_url,
        synchronous=settings.sqlite_synchronous,
        busy_timeout_ms=max(settings.db_busy_timeout_ms, 5000),
    )
    migrate.upgrade(engine)
    engine.dispose()
    build_services(settings)  # validates rules before anything listens
    from sla_bot.server import WebServer, start_worker_process, stop_process

    worker = start_worker_process(worker_argv)
    try:
        WebServer(settings, factory or app_factory).run()
    finally:
        stop_process(worker)
    return 0


def app_factory(clock: Any = None) -> Any:
    """Runs in each gunicorn worker: its own engine and rules holder."""
    from sla_bot.config import load_settings
    from sla_bot.web.app import create_app

    settings = load_settings()
    return create_app(services=build_services(settings, clock=clock))


def cmd_web(args: argparse.Namespace) -> int:
    from sla_bot.server import ensure_metrics_dir

    ensure_metrics_dir()
    settings = settings_from_env()
    start_logging(settings)
    build_services(settings)
    from sla_bot.server import WebServer

    WebServer(settings, app_factory).run()
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = settings_from_env()
    start_logging(settings)
    return run_worker(settings)


def run_worker(settings: Any, clock: Any = None) -> int:
    """The background worker until SIGTERM or SIGINT; `clock` only from `sla-bot demo`."""
    services = build_services(settings, worker=True, clock=clock)
    from sla_bot import worker

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker.run(services, stop)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = settings_from_env()
    start_logging(settings)
    from sla_bot.config import redact_url
    from sla_bot.db import migrate
    from sla_bot.db.engine import make_engine

    engine = make_engine(settings.database_url, busy_timeout_ms=5000)
    migrate.upgrade(engine, args.revision)
    print(
        f"database {redact_url(settings.database_url)} at revision "
        f"{migrate.current_revision(engine)}"
    )
    return 0


def cmd_db_current(args: argparse.Namespace) -> int:
    settings = settings_from_env()
    from sla_bot.db import migrate
    from sla_bot.db.engine import make_engine

    engine = make_engine(settings.database_url)
    current, head = migrate.current_revision(engine), migrate.head_revision()
    print(f"current: {current or '(empty database)'}  head: {head}")
    return 0 if current == head else 1


def cmd_check_config(args: argparse.Namespace) -> int:
    from sla_bot.config import describe_settings

    settings = settings_from_env()
    width = max(len(name) for name, _ in describe_settings(settings))
    for name, value in describe_settings(settings):
        print(f"{name:<{width}}  {value}")
    notes = settings.capabilities()
    if notes:
        print()
        for note in notes:
            print(f"- {note}")
    print("\nconfiguration is valid")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sla-bot",
        description="Enforce lead-follow-up SLAs: HubSpot webhooks in, Slack nudges out. "
        "Configuration comes from environment variables (see README).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser(
        "serve",
        help="web server and background worker together, for one machine (applies migrations)",
    ).set_defaults(func=cmd_serve)
    sub.add_parser(
        "web", help="web server only (several replicas; run `db upgrade` first)"
    ).set_defaults(func=cmd_web)
    sub.add_parser(
        "worker", help="background worker only (several replicas share one PostgreSQL)"
    ).set_defaults(func=cmd_worker)
    db = sub.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True, metavar="DB_COMMAND"
    )
    up = db.add_parser("upgrade", help="apply migrations (default: to the latest)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=cmd_db_upgrade)
    db.add_parser(
        "current", help="show the schema revision; exit 1 if not the latest"
    ).set_defaults(func=cmd_db_current)
    sub.add_parser(
        "check-config", help="validate the environment and say what the service will do"
    ).set_defaults(func=cmd_check_config)
    from sla_bot import deadletters

    deadletters.register(sub)
    from sla_bot import webhook_tool
    from sla_bot.demo import cli as demo_cli

    webhook_tool.register(sub)
    demo_cli.register(sub)
    try:
        from sla_bot.rules import cli as rules_cli
    except ImportError:
        pass
    else:
        rules_cli.register(sub)
    __import__("sla_bot.engine.cli", fromlist=["register"]).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
