"""Operational endpoints: liveness, readiness, metrics."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from sla_bot import heartbeat, metrics
from sla_bot.db import migrate
from sla_bot.services import Services

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


def worker_check(services: Services, started_at: datetime | None) -> str | None:
    """ "ok", or why no worker is processing (None: the check is off). A web process that has
    just started gives the workers one threshold's time to send their first beat."""
    stale_after = services.settings.worker_stale_seconds
    if stale_after <= 0:
        return None
    now = heartbeat.wall_now()
    try:
        with services.engine.connect() as conn:
            latest = heartbeat.latest_beat(conn)
    except Exception as exc:  # reported by the database check
        return f"unknown: {type(exc).__name__}"
    starting = latest is None and started_at is not None
    if starting and (now - started_at).total_seconds() <= stale_after:
        return "ok"
    return heartbeat.staleness(latest, now=now, stale_after=stale_after) or "ok"


def readiness(
    services: Services, started_at: datetime | None = None
) -> tuple[bool, dict[str, object]]:
    """Each check with a plain reason; ready only if all pass."""
    checks: dict[str, object] = {}
    ready = True
    try:
        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
        if not migrate.is_current(services.engine):
            ready = False
            checks["schema"] = "out of date: run `sla-bot db upgrade`"
        else:
            checks["schema"] = "ok"
    except Exception as exc:  # any failure to reach the database means not ready
        ready = False
        checks["database"] = f"unreachable: {type(exc).__name__}"
    worker = worker_check(services, started_at)
    if worker is not None:
        ready = ready and worker == "ok"
        checks["worker"] = worker
    rules = services.rules
    if rules is not None:
        rules.reload_if_changed()  # cheap stat() scan; picks up edits within one probe
        metrics.RULES_VALID.set(0 if rules.errors else 1)
        if not rules.loaded:
            ready = False
            checks["rules"] = {"status": "not loaded", "errors": [str(e) for e in rules.errors]}
        elif rules.errors:
            # The last good rules are in force, so still ready (200), but say why the edit was
            # refused. Every process of an instance shares the rules in force (rules.shared),
            # so every gunicorn worker gives this same answer.
            checks["rules"] = {
                "status": "invalid edit refused; previous rules in force",
                "version": rules.current().version,
                "errors": [str(e) for e in rules.errors],
            }
        else:
            checks["rules"] = {"status": "ok", "version": rules.current().version}
    return ready, checks


@bp.get("/readyz")
def readyz() -> Response:
    services: Services = current_app.extensions["sla_bot"]
    ready, checks = readiness(services, current_app.extensions.get("sla_bot_started_at"))
    response = jsonify({"status": "ready" if ready else "not ready", "checks": checks})
    response.status_code = 200 if ready else 503
    return response


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    from sla_bot.metrics_db import DatabaseCollector

    database = current_app.extensions.get("sla_bot_metrics_db")
    if database is None:
        services: Services = current_app.extensions["sla_bot"]
        database = DatabaseCollector(services.engine, services.clock)
        current_app.extensions["sla_bot_metrics_db"] = database
    body, content_type = metrics.render(database)
    return Response(body, content_type=content_type)
