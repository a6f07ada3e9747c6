"""`cadence.create_tasks`: the owner's HubSpot task queue shows the next touch when it is due."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from sla_bot.clock import FrozenClock
from sla_bot.rules.holder import RulesHolder
from tests.conftest import T0
from tests.engine.harness import Harness, ev, prop

SHIPPED = Path(__file__).resolve().parents[2] / "rules" / "default.yaml"
M = timedelta(minutes=1)
CONTACT = {
    "createdate": T0.isoformat(),
    "hubspot_owner_id": "1001",
    "lead_source": "demo_request",
    "firstname": "Dana",
    "lastname": "Lead",
    "num_contacted_notes": "0",
}


def _harness(engine: Engine, clock: FrozenClock, tmp_path: Path, create_tasks: bool) -> Harness:
    text = SHIPPED.read_text()
    if create_tasks:
        text = text.replace("# create_tasks: true", "create_tasks: true")
    (tmp_path / "rules.yaml").write_text(text)
    holder = RulesHolder(tmp_path)
    holder.reload_if_changed()
    return Harness(engine, clock, loaded=holder.current())


def _touch(h: Harness, at: object, n: int) -> None:
    h.webhook(prop(901, at, "num_contacted_notes", str(n), n=n))  # type: ignore[arg-type]


def test_each_next_touch_becomes_one_hubspot_task(
    engine: Engine, clock: FrozenClock, tmp_path: Path
) -> None:
    h = _harness(engine, clock, tmp_path, create_tasks=True)
    h.webhook(ev("contact.creation", 901, T0, properties=CONTACT), source="reconcile")
    h.webhook(ev("contact.sync", 901, T0, n=1, properties=CONTACT), source="reconcile")
    h.at(T0 + M)
    assert h.rows("hubspot", kind="create_task") == []  # no cadence before the first touch
    _touch(h, T0 + 2 * M, 1)
    h.at(T0 + 2 * M)
    tasks = [r["payload"] for r in h.rows("hubspot", kind="create_task")]
    assert len(tasks) == 1
    assert tasks[0]["subject"] == "Touch 2 of 8: Dana Lead"
    assert tasks[0]["owner_id"] == "1001" and tasks[0]["contact_id"] == "901"
    due = h.lead(901).next_due_at
    assert tasks[0]["due"] == due.isoformat()  # due when the second touch is due
    h.at(T0 + 3 * M)
    assert len(h.rows("hubspot", kind="create_task")) == 1  # not created again
    _touch(h, T0 + 4 * M, 2)
    h.at(T0 + 4 * M)
    subjects = [r["payload"]["subject"] for r in h.rows("hubspot", kind="create_task")]
    assert subjects == ["Touch 2 of 8: Dana Lead", "Touch 3 of 8: Dana Lead"]


def test_without_the_option_no_tasks_are_created(
    engine: Engine, clock: FrozenClock, tmp_path: Path
) -> None:
    h = _harness(engine, clock, tmp_path, create_tasks=False)
    h.webhook(ev("contact.sync", 901, T0, n=1, properties=CONTACT), source="reconcile")
    _touch(h, T0 + 2 * M, 1)
    h.at(T0 + 2 * M)
    assert len(h.lead(901).touches) == 1
    assert h.rows("hubspot", kind="create_task") == []
