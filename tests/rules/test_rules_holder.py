"""RulesHolder: hot reload picks up good edits, keeps the last good rules on bad ones."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sla_bot.clock import FrozenClock
from sla_bot.rules.errors import RuleError
from sla_bot.rules.holder import NoRulesLoaded, RulesHolder
from sla_bot.rules.loader import Source
from sla_bot.rules.shared import SharedRules
from tests.rules.util import BASE, POLICY, write

T0 = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)


def edit(path: Path, text: str) -> None:
    """Write and move the mtime forward, as a real later edit would."""
    st = path.stat() if path.exists() else None
    path.write_text(text, encoding="utf-8")
    if st is not None:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    write(tmp_path, {"rules.yaml": BASE + POLICY})
    return tmp_path / "rules.yaml"


def test_valid_edit_broken_edit_and_recovery(rules_file: Path) -> None:
    reported: list[list[RuleError]] = []
    clock = FrozenClock(T0)
    holder = RulesHolder(rules_file.parent, on_error=reported.append, clock=clock)
    assert not holder.loaded
    with pytest.raises(NoRulesLoaded):
        holder.current()

    assert holder.reload_if_changed() is True
    first = holder.current()
    assert first.loaded_at == T0 and len(first.version) == 12
    assert first.ruleset.policies["demo"].first_touch.within.text == "30 business minutes"
    assert holder.reload_if_changed() is False  # nothing changed: stat only

    edit(rules_file, (BASE + POLICY).replace("within: 30 business", "within: 45 business"))
    clock.advance(T0 - T0.replace(hour=11))
    assert holder.reload_if_changed() is True
    second = holder.current()
    assert second.version != first.version and second.loaded_at > first.loaded_at
    assert second.ruleset.policies["demo"].first_touch.within.text == "45 business minutes"

    edit(rules_file, (BASE + POLICY).replace("within: 30 business minutes", "within: soon"))
    assert holder.reload_if_changed() is False
    assert holder.current() is second  # the last good rules stay in force
    assert [(Path(e.file).name, e.line) for e in holder.errors] == [("rules.yaml", 22)]
    assert "bad duration" in holder.errors[0].message
    assert reported == [holder.errors]
    assert holder.reload_if_changed() is False and len(reported) == 1  # reported once

    edit(rules_file, BASE + POLICY)
    assert holder.reload_if_changed() is True
    assert holder.errors == []
    assert holder.current().version == first.version  # same content, same version


def test_touch_without_change_does_not_reload(rules_file: Path) -> None:
    holder = RulesHolder(rules_file.parent)
    assert holder.reload_if_changed() is True
    loaded = holder.current()
    edit(rules_file, rules_file.read_text(encoding="utf-8"))
    assert holder.reload_if_changed() is False
    assert holder.current() is loaded


def test_new_and_removed_files_are_noticed(rules_file: Path) -> None:
    holder = RulesHolder(rules_file.parent)
    holder.reload_if_changed()
    extra = rules_file.parent / "extra.yaml"
    edit(extra, "policies:\n  other:\n    first_touch: {within: 1h}\n")
    assert holder.reload_if_changed() is True
    assert set(holder.current().ruleset.policies) == {"demo", "other"}
    extra.unlink()
    assert holder.reload_if_changed() is True
    assert set(holder.current().ruleset.policies) == {"demo"}


def test_first_load_invalid_then_fixed(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    edit(path, "calendars: [\n")
    holder = RulesHolder(tmp_path)
    assert holder.reload_if_changed() is False
    assert not holder.loaded and holder.errors[0].line == 2
    with pytest.raises(NoRulesLoaded, match="rules.yaml:2:1: YAML"):
        holder.current()
    edit(path, BASE + POLICY)
    assert holder.reload_if_changed() is True and holder.loaded


def test_missing_directory_is_an_error_not_a_crash(tmp_path: Path) -> None:
    holder = RulesHolder(tmp_path / "missing")
    assert holder.reload_if_changed() is False
    assert holder.errors[0].message.startswith("cannot read:")


def test_policy_snapshot_through_the_holder(rules_file: Path) -> None:
    holder = RulesHolder(rules_file.parent)
    holder.reload_if_changed()
    loaded = holder.current()
    assert loaded.policy_snapshot("demo")["policy"] == "demo"
    assert len(loaded.policy_hash("demo")) == 16


def test_processes_of_one_instance_agree_on_the_rules_in_force(
    rules_file: Path, tmp_path: Path
) -> None:
    """Two processes (holders) sharing an instance directory: one saw a good edit the other
    missed; once an edit is refused both keep the same rules, and each event is said once."""
    shared_dir = tmp_path / "instance"
    shared_dir.mkdir()
    refusals: list[list[RuleError]] = []
    a = RulesHolder(rules_file.parent, shared=SharedRules(shared_dir), on_error=refusals.append)
    b = RulesHolder(rules_file.parent, shared=SharedRules(shared_dir), on_error=refusals.append)
    assert a.reload_if_changed() and b.reload_if_changed()
    first = a.current().version

    edit(rules_file, (BASE + POLICY).replace("within: 30 business", "within: 45 business"))
    assert a.reload_if_changed()  # only A polls while this edit is on disk
    second = a.current().version
    assert second != first and b.current().version == first

    edit(rules_file, (BASE + POLICY).replace("within: 30 business minutes", "within: soon"))
    a.reload_if_changed()
    assert b.reload_if_changed() is True  # B takes the instance's rules in force
    assert a.current().version == b.current().version == second
    assert b.current().ruleset.policies["demo"].first_touch.within.text == "45 business minutes"
    assert a.errors == b.errors and len(refusals) == 1  # refused once per instance

    late = RulesHolder(rules_file.parent, shared=SharedRules(shared_dir))
    late.reload_if_changed()  # a process started during the bad edit
    assert late.loaded and late.current().version == second and late.errors


def test_an_older_edit_published_late_never_replaces_a_newer_one(tmp_path: Path) -> None:
    """A slow process finishing its load of edit 1 after a fast one published edit 2 (the
    race a serve instance's worker process ran into at start-up)."""
    shared = SharedRules(tmp_path)
    assert shared.publish("v2", [Source("rules.yaml", "two")], stamp=2_000)
    assert not shared.publish("v1", [Source("rules.yaml", "one")], stamp=1_000)
    assert shared.in_force() == ("v2", [Source("rules.yaml", "two")])
    assert shared.publish("v3", [Source("rules.yaml", "three")], stamp=3_000)
    assert shared.in_force()[0] == "v3"  # type: ignore[index]


def test_holders_publish_with_the_files_change_time(rules_file: Path, tmp_path: Path) -> None:
    shared_dir = tmp_path / "instance"
    shared_dir.mkdir()
    fast = RulesHolder(rules_file.parent, shared=SharedRules(shared_dir))
    slow = RulesHolder(rules_file.parent, shared=SharedRules(shared_dir))
    assert slow.reload_if_changed()  # slow: edit 0 in force, and published
    edit(rules_file, (BASE + POLICY).replace("within: 30 business", "within: 45 business"))
    assert fast.reload_if_changed()
    newer = fast.current().version
    # The slow process re-publishes what it read before the edit: refused.
    old = [Source(str(rules_file), (BASE + POLICY))]
    assert not SharedRules(shared_dir).publish(slow.current().version, old, stamp=1)
    assert SharedRules(shared_dir).in_force()[0] == newer  # type: ignore[index]
