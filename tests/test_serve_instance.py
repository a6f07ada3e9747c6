"""One `sla-bot serve` is one instance: its processes agree, and say things once.

Real processes: gunicorn's web workers, the worker process, their logs and /readyz.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import requests

from tests.service_process import ServiceProcess, free_port
from tests.signing import SECRET

SHIPPED = Path(__file__).resolve().parents[1] / "rules" / "default.yaml"


def _rules(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "default.yaml").write_text(SHIPPED.read_text())
    return rules


def _env(tmp_path: Path, rules: Path, **extra: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "HUBSPOT_CLIENT_SECRET": SECRET,
        "SLA_BOT_WEB_WORKERS": "2",
        "SLA_BOT_RULES_DIR": str(rules),
        "HOME": str(home),
        "XDG_RUNTIME_DIR": "",
        "TMPDIR": str(tmp_path),
    }
    env.update(extra)
    return env


def _rules_check(url: str) -> tuple[int, dict[str, Any]]:
    r = requests.get(url + "/readyz", timeout=5)
    return r.status_code, r.json()["checks"]["rules"]


def _answers(url: str, n: int = 40) -> set[tuple[int, str, str]]:
    out = set()
    for _ in range(n):
        status, rules = _rules_check(url)
        out.add((status, rules["status"], rules.get("version", "")))
    return out


def _children(pid: int) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat[1]) == pid and stat[0] != "Z":
            found.append((int(entry.name), cmd))
    return found


def test_readyz_answers_alike_in_every_web_worker_while_an_edit_is_refused(
    tmp_path: Path,
) -> None:
    rules = _rules(tmp_path)
    text = (rules / "default.yaml").read_text()
    service = ServiceProcess("serve", _env(tmp_path, rules), tmp_path, free_port()).start()
    try:
        first = _rules_check(service.url)[1]["version"]
        (rules / "default.yaml").write_text(text + "\n# a good edit\n")
        deadline = time.monotonic() + 10
        second = first
        while second == first:  # stop at the first probe that sees it: one web worker has it
            assert time.monotonic() < deadline, "the good edit was not picked up"
            second = _rules_check(service.url)[1]["version"]
        # Every process has it (the worker's reload job runs every 2 s) before the next edit:
        # an operator's edits are seconds apart, and this test is about the refused one.
        while {v for _, _, v in _answers(service.url, 10)} != {second}:
            assert time.monotonic() < deadline, "not every process took the good edit"
        (rules / "default.yaml").write_text(text + "\npolices: {}\n")  # refused
        answers = _answers(service.url)
        assert answers == {(200, "invalid edit refused; previous rules in force", second)}

        # A web worker that leaves (its exit runs through serve's frames: it must not remove
        # the instance's directory) and one started while the files are invalid: same answer.
        workers = [pid for pid, cmd in _children(service.proc.pid) if "sla_bot serve" in cmd]
        assert len(workers) == 2
        run_dirs = list(tmp_path.glob(f"sla-bot-run-{service.proc.pid}-*"))
        assert len(run_dirs) == 1
        os.kill(workers[0], signal.SIGTERM)
        deadline = time.monotonic() + 15
        while len([p for p, c in _children(service.proc.pid) if "sla_bot serve" in c]) < 2:
            assert time.monotonic() < deadline, "gunicorn did not start a new web worker"
            time.sleep(0.1)
        assert _answers(service.url) == answers
        assert run_dirs[0].is_dir()

        log = service.log.read_text()
        assert log.count("loaded from 1 file(s)") == 2, log  # v1 and v2: once each
        assert log.count("SLACK_BOT_TOKEN is not set") == 1, log
        assert log.count("the last good rules stay in force") == 1, log
        metrics = requests.get(service.url + "/metrics", timeout=5).text
        assert "sla_bot_rules_reload_errors_total 1.0" in metrics
    finally:
        service.stop()
    home = tmp_path / "home"
    assert not (home / ".gunicorn").exists()  # no control socket shared by every instance
    assert list(tmp_path.glob("sla-bot-run-*")) == []  # removed when serve stopped


def test_json_logs_cover_gunicorn_lines(tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    env = _env(tmp_path, rules, SLA_BOT_LOG_FORMAT="json")
    service = ServiceProcess("serve", env, tmp_path, free_port()).start()
    try:
        requests.get(service.url + "/readyz", timeout=5)
    finally:
        service.stop()
    lines = [line for line in service.log.read_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line, gunicorn's included
    assert any(p["logger"].startswith("gunicorn") for p in parsed)


def test_a_port_in_use_is_named_with_the_variable_to_change(tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = ServiceProcess("serve", _env(tmp_path, rules), tmp_path, port)
        started = time.monotonic()
        try:
            service.start(timeout=20)
        except RuntimeError as exc:
            message = str(exc)
        else:
            raise AssertionError("serve started on a port in use")
        finally:
            if service.proc is not None and service.proc.poll() is None:
                service.proc.kill()
                service.proc.wait()
    assert f"127.0.0.1:{port} is already in use" in message
    assert "SLA_BOT_PORT" in message
    assert time.monotonic() - started < 15  # not gunicorn's five retries
