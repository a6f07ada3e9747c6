"""What the web app and the worker are built from; tests pass their own (frozen clock, temp DB)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from sla_bot.clock import Clock, SystemClock
from sla_bot.config import Settings
from sla_bot.db.engine import make_engine


@dataclass
class Services:
    settings: Settings
    engine: Engine
    clock: Clock = field(default_factory=SystemClock)
    rules: Any = None  # sla_bot.rules.holder.RulesHolder once rules are loaded

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> Services:
        engine = make_engine(
            settings.database_url,
            synchronous=settings.sqlite_synchronous,
            busy_timeout_ms=settings.db_busy_timeout_ms,
        )
        return cls(settings=settings, engine=engine, clock=clock or SystemClock())
