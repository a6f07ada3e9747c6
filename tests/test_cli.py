"""The `sla-bot` command line as a user runs it (a real subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Any:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLA_BOT_", "HUBSPOT_", "SLACK_", "DATABASE_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "sla_bot", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        cwd=cwd or ROOT,
        timeout=60,
    )


def test_help_explains_every_command() -> None:
    out = run("--help").stdout
    for command in ("serve", "web", "worker", "db", "check-config", "rules"):
        assert command in out


def test_check_config_names_the_bad_variable() -> None:
    result = run("check-config", env={"SLA_BOT_PORT": "eighty"})
    assert result.returncode == 2
    assert "SLA_BOT_PORT='eighty'" in result.stderr


def test_check_config_says_what_will_not_happen() -> None:
    result = run("check-config", env={"HUBSPOT_ACCESS_TOKEN": "pat-secret-value"})
    assert result.returncode == 0
    assert "SLACK_BOT_TOKEN is not set" in result.stdout
    assert "pat-secret-value" not in result.stdout
    assert "HUBSPOT_ACCESS_TOKEN" in result.stdout and "(set, hidden)" in result.stdout


def test_db_upgrade_then_current(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    assert run("db", "current", env=env).returncode == 1  # empty database
    upgraded = run("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    current = run("db", "current", env=env)
    assert current.returncode == 0 and "head" in current.stdout


def test_db_downgrade_then_an_old_revision_is_not_current(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    assert run("db", "upgrade", env=env).returncode == 0
    down = run("db", "downgrade", "0014", env=env)
    assert down.returncode == 0 and "at revision 0014" in down.stdout, down.stderr
    current = run("db", "current", env=env)
    assert current.returncode == 1 and "current: 0014" in current.stdout
    assert run("worker", env=env, cwd=ROOT).returncode == 2  # not its revision: refused


def test_worker_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    result = run("worker", env={"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}, cwd=ROOT)
    assert result.returncode == 2
    assert "sla-bot db upgrade" in result.stderr


def test_serve_refuses_broken_rules(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("policies:\n  demo:\n    first_touch: {target: soon}\n")
    result = run(
        "serve",
        env={"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "SLA_BOT_RULES_DIR": str(tmp_path)},
    )
    assert result.returncode == 2
    assert "r.yaml:" in result.stderr


def test_dead_letters_are_listed_and_shown(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from sla_bot.db import migrate
    from sla_bot.db.engine import make_engine
    from sla_bot.intake import store_dead_letter

    url = f"sqlite:///{tmp_path / 'x.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    store_dead_letter(
        engine,
        body=b'[{"broken"',
        reason="body is not valid JSON",
        received_at=datetime(2026, 11, 20, tzinfo=UTC),
    )
    env = {"DATABASE_URL": url}
    listed = run("dead-letters", env=env)
    assert "body is not valid JSON" in listed.stdout
    assert '[{"broken"' in run("dead-letters", "--show", "1", env=env).stdout
    assert run("dead-letters", "--resolve", "1", env=env).returncode == 0
    assert run("dead-letters", env=env).stdout.strip() == "no dead letters"


def test_every_command_explains_itself_and_there_is_a_version(capsys: Any) -> None:
    import pytest

    from sla_bot import __version__
    from sla_bot.cli import main

    assert run("--version").stdout.strip() == f"sla-bot {__version__}"
    for command, words in {
        "serve": "apply database migrations",
        "web": "only the web server",
        "worker": "only the background worker",
        "check-config": "effective configuration",
        "dead-letters": "could not use",
        "demo": "fake HubSpot",
    }.items():
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert words in out, (command, out)


def test_outside_the_repository_commands_say_what_is_missing(tmp_path: Path) -> None:
    """No traceback, no empty sla-bot.db left behind, and the path that was looked for."""
    for args in (("dead-letters",), ("lead", "show", "5")):
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 2, result
        assert f"no database at {tmp_path / 'sla-bot.db'}" in result.stderr
        assert "Traceback" not in result.stderr
        assert "DATABASE_URL" in result.stderr
    assert not (tmp_path / "sla-bot.db").exists()
    (tmp_path / "sla-bot.db").touch()
    empty = run("dead-letters", cwd=tmp_path)
    assert empty.returncode == 2 and "has no sla-bot tables yet" in empty.stderr


def test_check_config_fails_like_serve_when_the_rules_directory_is_missing(
    tmp_path: Path,
) -> None:
    checked = run("check-config", cwd=tmp_path)
    served = run("serve", cwd=tmp_path)
    for result in (checked, served):
        assert result.returncode == 2
        assert f"the rules directory {tmp_path / 'rules'} does not exist" in result.stderr
        assert "SLA_BOT_RULES_DIR" in result.stderr
    assert "configuration is valid" not in checked.stdout
    assert not (tmp_path / "sla-bot.db").exists()  # serve stopped before creating it
    ok = run("check-config", env={"SLA_BOT_RULES_DIR": str(ROOT / "rules")}, cwd=tmp_path)
    assert ok.returncode == 0 and "configuration is valid" in ok.stdout
    assert "inbound_demo" in ok.stdout or "1 policies" in ok.stdout


def test_db_upgrade_does_not_repeat_the_credential_notices(tmp_path: Path) -> None:
    result = run("db", "upgrade", env={"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    assert result.returncode == 0
    assert "is not set" not in result.stderr


def test_a_reader_that_leaves_early_gets_no_traceback(monkeypatch: Any) -> None:
    """`sla-bot ... | head`: writing to a closed pipe ends quietly with 141, as `cat` does."""
    import sys as _sys

    from sla_bot.cli import main

    read, write = os.pipe()
    os.close(read)
    saved = os.dup(1)
    stream = os.fdopen(write, "w")
    monkeypatch.setattr(_sys, "stdout", stream)
    try:
        assert main(["rules", "check", str(ROOT / "rules")]) == 141
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        stream.close()


def test_the_command_line_does_not_load_prometheus_before_serve_configures_it() -> None:
    """`serve` sets PROMETHEUS_MULTIPROC_DIR before prometheus_client is first imported; a
    command module importing it at parse time made every web worker's /metrics empty."""
    code = (
        "import sys; from sla_bot.cli import build_parser; build_parser(); "
        "print('prometheus_client' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
