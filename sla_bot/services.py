"""What the web app and the worker are built from; tests pass their own (frozen clock, temp DB)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from sla_bot.clock import Clock, SystemClock
from sla_bot.config import Settings
from sla_bot.db.engine import make_engine
from sla_bot.signers import V3Signers


@dataclass
class Services:
    settings: Settings
    engine: Engine
    clock: Clock = field(default_factory=SystemClock)
    rules: Any = None  # sla_bot.rules.holder.RulesHolder once rules are loaded
    v3_signers: V3Signers = field(default_factory=V3Signers)

    @classmethod
    def from_settings(
        cls, settings: Settings, clock: Clock | None = None, *, worker: bool = False
    ) -> Services:
        """`worker=True`: SQLite commits skip the fsync (synchronous=NORMAL). Safe in WAL mode:
        a later webhook commit syncs them, and a worker transaction lost to power failure
        rolls back its claim with it, so the work is simply done again."""
        engine = make_engine(
            settings.database_url,
            synchronous="NORMAL" if worker else settings.sqlite_synchronous,
            busy_timeout_ms=settings.db_busy_timeout_ms,
            autocheckpoint=worker,
        )
        return cls(settings=settings, engine=engine, clock=clock or SystemClock())
