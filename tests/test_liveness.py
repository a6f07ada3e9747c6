"""A dead worker is noticed: /readyz, `sla-bot health`, and `serve` starting its worker again."""

from __future__ import annotations

import os
import signal
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.engine import Engine

from sla_bot.db.engine import make_engine
from sla_bot.db.schema import worker_heartbeats
from sla_bot.heartbeat import Heartbeat, wall_now
from sla_bot.services import Services
from sla_bot.web.app import create_app
from tests.conftest import make_settings
from tests.service_process import ServiceProcess, free_port, wait_for
from tests.test_cli import run
from tests.test_serve_instance import _env, _rules


def _app(services: Services, **env: str) -> Any:
    settings = make_settings(DATABASE_URL=str(services.engine.url), **env)
    return create_app(services=Services(settings, services.engine, services.clock))


def _readyz(app: Any) -> tuple[int, Any]:
    r = app.test_client().get("/readyz")
    return r.status_code, r.get_json()["checks"].get("worker")


def test_readyz_is_503_when_the_worker_heartbeat_is_stale(
    services: Services, engine: Engine
) -> None:
    app = _app(services)
    Heartbeat("w1", "host", 1).beat(engine, now=wall_now() - timedelta(seconds=90))
    status, worker = _readyz(app)
    assert status == 503
    assert "90 s old" in worker and "SLA_BOT_WORKER_STALE_SECONDS=60" in worker

    Heartbeat("w2", "host", 2).beat(engine, now=wall_now())  # any live worker will do
    assert _readyz(app) == (200, "ok")


def test_readyz_gives_a_starting_worker_one_threshold_to_beat(
    services: Services, engine: Engine
) -> None:
    app = _app(services, SLA_BOT_WORKER_STALE_SECONDS="30")
    assert _readyz(app) == (200, "ok")  # just started: the worker may not have beaten yet
    app.extensions["sla_bot_started_at"] = wall_now() - timedelta(seconds=31)
    status, worker = _readyz(app)
    assert status == 503 and "no worker has reported a heartbeat" in worker


def test_the_worker_check_can_be_switched_off(services: Services, engine: Engine) -> None:
    app = _app(services, SLA_BOT_WORKER_STALE_SECONDS="0")
    Heartbeat("w1", "host", 1).beat(engine, now=wall_now() - timedelta(hours=1))
    assert _readyz(app) == (200, None)


def _health(url: str, *args: str, port: int | None = None) -> Any:
    env = {"DATABASE_URL": url, "SLA_BOT_PORT": str(port or free_port())}
    return run("health", *args, env=env)


@pytest.mark.parametrize("mode", [(), ("--worker",)])
def test_health_of_a_worker_is_its_own_recent_heartbeat(sqlite_url: str, mode: Any) -> None:
    engine = make_engine(sqlite_url)
    from sla_bot.db import migrate

    migrate.upgrade(engine)
    result = _health(sqlite_url, *mode)
    assert result.returncode == 1
    assert "unhealthy: worker" in result.stdout and "no worker has reported" in result.stdout

    here = socket.gethostname()
    Heartbeat("stale", here, os.getpid()).beat(engine, now=wall_now() - timedelta(minutes=5))
    result = _health(sqlite_url, *mode)
    assert result.returncode == 1 and "s old" in result.stdout
    # Fresh beats of other hosts or of a process that has died do not count.
    Heartbeat("elsewhere", "other-host", os.getpid()).beat(engine, now=wall_now())
    Heartbeat("dead", here, 2**22 + 1).beat(engine, now=wall_now())
    assert _health(sqlite_url, *mode).returncode == 1

    Heartbeat("me", here, os.getpid()).beat(engine, now=wall_now())
    result = _health(sqlite_url, *mode)
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith("healthy: worker")
    engine.dispose()


def test_health_of_a_web_needs_its_port_to_answer(sqlite_url: str) -> None:
    result = _health(sqlite_url, "--web")
    assert result.returncode == 1
    assert "/readyz on 127.0.0.1" in result.stdout and "did not answer" in result.stdout


def test_health_refuses_a_bad_configuration() -> None:
    result = run("health", env={"SLA_BOT_PORT": "eighty"})
    assert result.returncode == 1 and "SLA_BOT_PORT" in result.stdout


def _worker_pids(engine: Engine) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(select(worker_heartbeats.c.pid)).scalars())


def test_serve_starts_a_killed_worker_again_and_stays_healthy(tmp_path: Path) -> None:
    """Bounded: each wait below gives up after 30 s."""
    env = _env(tmp_path, _rules(tmp_path))
    service = ServiceProcess("serve", env, tmp_path, free_port()).start()
    engine = make_engine(env["DATABASE_URL"])
    try:
        first = wait_for(lambda: _worker_pids(engine), timeout=30)
        assert len(first) == 1
        (pid,) = first
        os.kill(pid, signal.SIGKILL)
        again = wait_for(lambda: _worker_pids(engine) - first, timeout=30)
        assert again, service.log.read_text()[-2000:]
        (new_pid,) = again
        assert Path(f"/proc/{new_pid}").exists()
        assert f"the worker process (pid {pid}) exited" in service.log.read_text()
        assert requests.get(service.url + "/readyz", timeout=5).status_code == 200
        health = run(
            "health",
            env={"DATABASE_URL": env["DATABASE_URL"], "SLA_BOT_PORT": str(service.port)},
        )
        assert health.returncode == 0 and "ready" in health.stdout
        (link,) = tmp_path.glob("sla-bot-run-*/metrics")  # in (or linked from) the instance
        metrics = link.resolve()
        assert metrics.is_dir()
    finally:
        service.stop()
        engine.dispose()
    assert (
        not Path(f"/proc/{new_pid}").exists()
        or "Z" in Path(f"/proc/{new_pid}/stat").read_text().split()[2]
    )
    # Nothing left behind in the temporary directory: no instance, no metrics directory.
    assert not list(tmp_path.glob("sla-bot-*"))
    assert not metrics.exists()
