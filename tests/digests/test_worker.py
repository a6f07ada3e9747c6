"""The digest job as `sla-bot worker` wires it: due at the local time, delivered by the
deliver-slack job (to the log without a Slack token), once."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from sla_bot.clock import FrozenClock
from sla_bot.config import Settings
from sla_bot.rules import RulesHolder
from sla_bot.services import Services
from sla_bot.worker import jobs
from tests.digests.conftest import RULES
from tests.outcomes.history import ny


def test_the_worker_plans_and_logs_the_digests(
    engine: Engine,
    clock: FrozenClock,
    digest_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="sla_bot.notify")
    holder = RulesHolder(RULES)
    holder.reload_if_changed()
    services = Services(settings=digest_settings, engine=engine, clock=clock, rules=holder)
    planned = {name: func for name, func, _ in jobs(services)}
    clock.set(ny("2026-11-09 08:29"))
    planned["plan-digests"]()
    planned["deliver-slack"]()
    assert "Scorecard sdr" not in caplog.text
    clock.set(ny("2026-11-09 08:30:10"))
    for _ in range(2):  # a second tick in the same minute adds nothing
        planned["plan-digests"]()
        planned["deliver-slack"]()
    assert caplog.text.count("Scorecard sdr, week 2026-W45") == 1
    assert "no leads this week" in caplog.text  # an empty week still gets its scorecard
    assert "team=sdr&access=<hidden>" in caplog.text  # a link is a grant: not in the log
    assert "access=v1." not in caplog.text
