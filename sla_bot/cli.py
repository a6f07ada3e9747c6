"""The `sla-bot` command line.

Imports stay inside the commands: multiprocess metrics must be configured before
prometheus_client is first imported, and `--help` should not pay for SQLAlchemy or Flask.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

log = logging.getLogger("sla_bot")


def settings_from_env() -> Any:
    from sla_bot.config import ConfigError, load_settings

    try:
        return load_settings()
    except ConfigError as exc:
        print(f"sla-bot: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def start_logging(settings: Any, *, notes: bool = True) -> None:
    """Configure logging; say once per instance (not per process) what the service won't do."""
    from sla_bot import logs
    from sla_bot.server import first_in_instance

    logs.configure(settings.log_format, settings.log_level)
    if notes and first_in_instance("capabilities"):
        for note in settings.capabilities():
            (log.warning if note.startswith("INSECURE") else log.info)(note)


def build_services(
    settings: Any, *, require_schema: bool = True, worker: bool = False, clock: Any = None
) -> Any:
    from sla_bot.services import Services

    if require_schema:
        require_database(settings)
    services = Services.from_settings(settings, clock, worker=worker)
    if require_schema:
        require_schema_current(services.engine, settings)
        from sla_bot.config import ConfigError
        from sla_bot.portals.apps import secret_box
        from sla_bot.portals.status import check_startup

        try:
            check_startup(services.engine, settings, secret_box(settings))
        except ConfigError as exc:
            services.engine.dispose()
            print(f"sla-bot: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    services.rules = rules_holder(settings)
    return services


def _fail(message: str) -> NoReturn:
    print(f"sla-bot: {message}", file=sys.stderr)
    raise SystemExit(2)


def require_database(settings: Any) -> None:
    """Commands that read an existing deployment's database never create an empty one."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    path = Path(url.database)
    if not path.exists():
        _fail(
            f"no database at {path.resolve()} (DATABASE_URL={settings.database_url}, "
            f"relative to the working directory {Path.cwd()}): run this where the service "
            "runs, or set DATABASE_URL; `sla-bot serve` or `sla-bot db upgrade` creates it"
        )


def require_schema_current(engine: Any, settings: Any) -> None:
    """Exit with what is wrong: unreachable, empty, or an older schema."""
    from sqlalchemy.exc import SQLAlchemyError

    from sla_bot.config import redact_url
    from sla_bot.db import migrate

    where = redact_url(settings.database_url)
    try:
        current = migrate.current_revision(engine)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        _fail(f"cannot open the database {where}: {reason}")
    if current is None:
        _fail(f"the database {where} has no sla-bot tables yet: run `sla-bot db upgrade` first")
    if current != migrate.head_revision():
        _fail(
            f"the database {where} is at schema {current}, this version needs "
            f"{migrate.head_revision()}: run `sla-bot db upgrade` first"
        )


def rules_dir_problem(settings: Any) -> str | None:
    """A missing rules directory, said plainly (with where it was looked for)."""
    directory = Path(settings.rules_dir)
    if directory.is_dir():
        return None
    what = "is not a directory" if directory.exists() else "does not exist"
    return (
        f"the rules directory {directory.resolve()} {what} (SLA_BOT_RULES_DIR="
        f"{settings.rules_dir}, relative to {Path.cwd()}): run from the directory that holds "
        "rules/, or set SLA_BOT_RULES_DIR"
    )


def rules_holder(settings: Any) -> Any:
    """Load the rules; refuse to start on invalid ones, then keep the last good set on edits."""
    from sla_bot import metrics
    from sla_bot.rules.holder import RulesHolder

    def refused(errors: list[Any]) -> None:  # once per instance, by the first process to see it
        metrics.RULES_RELOAD_ERRORS.inc()
        log.error(
            "rule files in %s are invalid; the last good rules stay in force:\n  %s",
            settings.rules_dir,
            "\n  ".join(str(e) for e in errors),
        )

    problem = rules_dir_problem(settings)
    if problem:
        _fail(problem)
    from sla_bot.server import shared_rules

    holder = RulesHolder(settings.rules_dir, on_error=refused, shared=shared_rules())
    holder.reload_if_changed()
    if not holder.loaded:
        print(f"sla-bot: rules in {settings.rules_dir} are invalid:", file=sys.stderr)
        for err in holder.errors:
            print(f"  {err}", file=sys.stderr)
        raise SystemExit(2)
    metrics.RULES_VALID.set(0 if holder.errors else 1)
    return holder


def cmd_serve(args: argparse.Namespace) -> int:
    from sla_bot.server import instance_dir, use_metrics_dir

    with instance_dir() as run_dir:
        use_metrics_dir(run_dir)
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
    from sla_bot.server import port_problem

    problem = rules_dir_problem(settings) or port_problem(settings)
    if problem:  # before the database is created in what may be the wrong directory
        _fail(problem)
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
    from sla_bot.server import WebServer, WorkerSupervisor

    worker = WorkerSupervisor(worker_argv).start()
    try:
        WebServer(settings, factory or app_factory).run()
    finally:
        worker.stop()
    return 0


def app_factory(clock: Any = None) -> Any:
    """Runs in each gunicorn worker: its own engine and rules holder."""
    from sla_bot.config import load_settings
    from sla_bot.web.app import create_app

    settings = load_settings()
    return create_app(services=build_services(settings, clock=clock))


def cmd_web(args: argparse.Namespace) -> int:
    from sla_bot.server import WebServer, instance_dir, port_problem, use_metrics_dir

    with instance_dir() as run_dir:
        use_metrics_dir(run_dir)
        settings = settings_from_env()
        start_logging(settings)
        problem = port_problem(settings)
        if problem:
            _fail(problem)
        build_services(settings)
        WebServer(settings, app_factory).run()
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = settings_from_env()
    start_logging(settings)
    return run_worker(settings)


def run_worker(settings: Any, clock: Any = None) -> int:
    """The background worker until SIGTERM or SIGINT; `clock` only from `sla-bot demo`."""
    from sla_bot import metrics_store

    metrics_store.buffer_in_this_process()  # the worker's counts go to the database
    services = build_services(settings, worker=True, clock=clock)
    from sla_bot import worker
    from sla_bot.shutdown import stop_on_signals

    stop = threading.Event()
    stop_on_signals(stop)
    worker.run(services, stop)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    return _migrate("upgrade", args.revision)


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    return _migrate("downgrade", args.revision)


def _migrate(direction: str, revision: str) -> int:
    """`db upgrade` (creates the database) or `db downgrade` (needs one) to `revision`."""
    settings = settings_from_env()
    start_logging(settings, notes=False)
    if direction == "downgrade":
        require_database(settings)
    from sla_bot.config import redact_url
    from sla_bot.db import migrate
    from sla_bot.db.engine import make_engine

    engine = make_engine(settings.database_url, busy_timeout_ms=5000)
    getattr(migrate, direction)(engine, revision)
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


def cmd_db_prune(args: argparse.Namespace) -> int:
    settings = settings_from_env()
    start_logging(settings, notes=False)
    require_database(settings)
    from sla_bot import retention
    from sla_bot.clock import SystemClock
    from sla_bot.db.engine import make_engine

    engine = make_engine(settings.database_url, busy_timeout_ms=5000)
    require_schema_current(engine, settings)
    policy = retention.Policy.from_settings(settings)
    counts = retention.prune(engine, policy, now=SystemClock().now(), dry_run=args.dry_run)
    left = retention.remaining(engine)
    verb, left_now = ("WOULD DELETE", "ROWS NOW") if args.dry_run else ("DELETED", "ROWS LEFT")
    width = max(len(name) for name in counts)
    print(f"{'TABLE':<{width}}  {verb:>12}  {left_now:>10}")
    for name, n in counts.items():
        print(f"{name:<{width}}  {n:>12}  {left[name]:>10}")
    if args.dry_run:
        print("(dry run: nothing was deleted)")
    return 0


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
    from sla_bot.rules.loader import load_directory

    problem = rules_dir_problem(settings)
    result = None if problem else load_directory(Path(settings.rules_dir))
    if result is not None and result.ruleset is None:
        problem = f"the rules in {settings.rules_dir} are invalid:\n  " + "\n  ".join(
            str(e) for e in result.errors
        )
    if problem:
        print(f"\nsla-bot: {problem}", file=sys.stderr)
        return 2
    assert result is not None and result.ruleset is not None
    print(f"\nrules {settings.rules_dir}: {result.ruleset.summary()} (version {result.version})")
    print("configuration is valid")
    return 0


def _command(sub: Any, name: str, summary: str, description: str, func: Any) -> Any:
    """A sub-command whose `--help` explains it, not only the list in `sla-bot --help`."""
    parser = sub.add_parser(name, help=summary, description=description)
    parser.set_defaults(func=func)
    return parser


def build_parser() -> argparse.ArgumentParser:
    from sla_bot import __version__

    parser = argparse.ArgumentParser(
        prog="sla-bot",
        description="Enforce lead-follow-up SLAs: HubSpot webhooks in, Slack nudges out. "
        "Configuration comes from environment variables (see README). "
        "New here? `sla-bot demo` shows it working in a minute, with no accounts.",
    )
    parser.add_argument("--version", action="version", version=f"sla-bot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _command(
        sub,
        "serve",
        "web server and background worker together, for one machine (applies migrations)",
        "Run the service on one machine: apply database migrations, check the rules, then "
        "start the background worker and the web server (gunicorn) on SLA_BOT_HOST:SLA_BOT_PORT "
        "(default 127.0.0.1:8080). Stops gracefully on SIGTERM or Ctrl-C.",
        cmd_serve,
    )
    _command(
        sub,
        "web",
        "web server only (several replicas; run `db upgrade` first)",
        "Run only the web server (gunicorn, SLA_BOT_WEB_WORKERS sync workers): webhooks, Slack "
        "buttons, /healthz, /readyz, /metrics. For several replicas behind a load balancer; run "
        "`sla-bot db upgrade` once first and at least one `sla-bot worker` beside it.",
        cmd_web,
    )
    _command(
        sub,
        "worker",
        "background worker only (several replicas share one PostgreSQL)",
        "Run only the background worker: split webhook batches, route leads, fetch contacts, "
        "send due nudges and escalations, write back to HubSpot, reload rules. Several workers "
        "can share one PostgreSQL; run `sla-bot db upgrade` first.",
        cmd_worker,
    )
    db = sub.add_parser(
        "db", help="database schema", description="Apply or show database migrations."
    ).add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    up = _command(
        db,
        "upgrade",
        "apply migrations (default: to the latest)",
        "Apply database migrations to DATABASE_URL, up to REVISION (default: the latest).",
        cmd_db_upgrade,
    )
    up.add_argument("revision", nargs="?", default="head")
    down = _command(
        db,
        "downgrade",
        "take the schema back to REVISION (before running an older release)",
        "Take DATABASE_URL's schema back to REVISION, converting data the older release could "
        "not read (e.g. 0014: webhook bodies written back uncompressed). Stop every process "
        "first; run it with the newer release, which knows how to undo its own migrations.",
        cmd_db_downgrade,
    )
    down.add_argument("revision")
    _command(
        db,
        "current",
        "show the schema revision; exit 1 if not the latest",
        "Show the database's schema revision and the latest one; exit 1 if they differ.",
        cmd_db_current,
    )
    prune = _command(
        db,
        "prune",
        "delete rows past retention now (the worker also does it every hour)",
        "Delete what the retention settings (SLA_BOT_RETAIN_*) no longer keep: processed "
        "webhook bodies and events, the audit trail and delivered outbox rows of long-closed "
        "leads, old dead letters; idle processes' counter rows are folded into one. Open leads' "
        "rows and outcome facts are never deleted. Prints rows per table.",
        cmd_db_prune,
    )
    prune.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    _command(
        sub,
        "check-config",
        "validate the environment and say what the service will do",
        "Validate every environment variable and the rules directory, print the effective "
        "configuration (secrets hidden) and say what the service will and will not do with it. "
        "Exit 0 if `sla-bot serve` would start, 2 otherwise.",
        cmd_check_config,
    )
    from sla_bot import deadletters, health

    deadletters.register(sub)
    health.register(sub)
    from sla_bot import webhook_tool
    from sla_bot.demo import cli as demo_cli

    webhook_tool.register(sub)
    demo_cli.register(sub)
    try:
        from sla_bot.rules import cli as rules_cli
    except ImportError:
        pass
    else:
        rules_sub = rules_cli.register(sub)
        __import__("sla_bot.backtest.cli", fromlist=["register"]).register(rules_sub)
    __import__("sla_bot.lead_show", fromlist=["register"]).register(sub)
    __import__("sla_bot.portals.cli", fromlist=["register"]).register(sub)
    __import__("sla_bot.leadqueue.cli", fromlist=["register"]).register(sub)
    __import__("sla_bot.reports.cli", fromlist=["register"]).register(sub)
    __import__("sla_bot.hubspot_setup", fromlist=["register"]).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["health"]:
        # The Docker health check runs every 30 s, with a timeout: it skips the full parser,
        # which imports every command's modules (the rules engine alone takes seconds on a
        # busy machine).
        from sla_bot import health

        return health.main(given[1:])
    args = build_parser().parse_args(given)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a broken pipe shows here, not in an unraisable error at exit
        return code
    except BrokenPipeError:
        # `sla-bot lead show 1 --json | head`: the reader left. Stop quietly, as `cat` does,
        # and keep Python from complaining again while flushing stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command cut off this way
