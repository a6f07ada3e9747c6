"""The image and compose file keep a dead service visible and restart it (checked as files;
the containers themselves are checked with docker-local, see the issue's closing note)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _seconds(text: str) -> int:
    match = re.fullmatch(r"(\d+)s", text)
    assert match, text
    return int(match.group(1))


def test_the_image_health_check_works_for_every_role() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    check = dockerfile.split("HEALTHCHECK", 1)[1].split("\n\n", 1)[0]
    assert 'CMD ["sla-bot", "health"]' in check
    assert "/healthz" not in check  # a worker has no port


def test_compose_restarts_services_and_waits_for_their_shutdown() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"db", "sla-bot", "web", "worker"} <= set(services)
    for name, service in services.items():
        assert service.get("restart") in ("unless-stopped", "always"), name
        # serve: gunicorn's 20 s graceful timeout, then up to 20 s for the worker's jobs
        needed = 20 if name == "worker" else 40
        if name != "db":
            assert _seconds(service["stop_grace_period"]) > needed, name
            assert any(e["path"] == ".env" for e in service["env_file"]), name
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "sla-bot", "health", "--worker"]
    assert services["web"]["healthcheck"]["test"] == ["CMD", "sla-bot", "health", "--web"]


def test_the_example_env_file_names_only_real_settings() -> None:
    from sla_bot.config import Settings

    known = {info.validation_alias.choices[0] for info in Settings.model_fields.values()}  # type: ignore[union-attr]
    names = re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)
    assert names and set(names) <= known, set(names) - known
