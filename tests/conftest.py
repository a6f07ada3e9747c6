"""Shared fixtures: real SQLite and real PostgreSQL, a frozen clock, signed requests.

PostgreSQL tests run when SLA_BOT_TEST_DATABASE_URL is set (.ci/run sets it); each test gets
its own schema, so tests never see each other's rows.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from sla_bot.clock import FrozenClock
from sla_bot.config import Settings, load_settings
from sla_bot.db import migrate
from sla_bot.db.engine import make_engine
from sla_bot.services import Services
from sla_bot.web.app import create_app
from tests.signing import SECRET

pytest_plugins = [
    name
    for name in ("tests.fixtures_hubspot", "tests.fixtures_slack")
    if importlib.util.find_spec(name) is not None
]

PG_URL = os.environ.get("SLA_BOT_TEST_DATABASE_URL")
T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # a Friday, 10:00 in New York


def pg_schema_url(base: str, schema: str) -> str:
    url = make_url(base).set(drivername="postgresql+psycopg")
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL tests need SLA_BOT_TEST_DATABASE_URL (set by .ci/run)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield pg_schema_url(PG_URL, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


def make_settings(**env: str) -> Settings:
    base = {"HUBSPOT_CLIENT_SECRET": SECRET, "SLA_BOT_RULES_DIR": "rules"}
    base.update(env)
    return load_settings(base)


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(DATABASE_URL=db_url)


@pytest.fixture
def services(settings: Settings, engine: Engine, clock: FrozenClock) -> Services:
    return Services(settings=settings, engine=engine, clock=clock)


@pytest.fixture
def client(services: Services) -> Any:
    return create_app(services=services).test_client()
