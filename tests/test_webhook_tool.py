"""`sla-bot webhook sign|send`: hand-made requests signed exactly as HubSpot signs them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.datastructures import Headers
from werkzeug.serving import make_server

from integrations.hubspot.payloads import validate
from integrations.hubspot.signatures import verify
from sla_bot.cli import main
from sla_bot.db import migrate
from sla_bot.db.engine import make_engine
from sla_bot.db.schema import webhook_batches
from sla_bot.services import Services
from sla_bot.web.app import create_app
from tests.conftest import make_settings
from tests.signing import SECRET

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "webhooks"


@pytest.mark.parametrize("name", ["contact-creation.json", "workflow-contact.json"])
def test_shipped_examples_are_valid_webhook_bodies(name: str) -> None:
    parsed = validate((EXAMPLES / name).read_bytes(), received_at=datetime.now(UTC))
    assert parsed.size == 1


def test_sign_prints_headers_that_verify(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", SECRET)
    url = "http://127.0.0.1:8080/webhooks/hubspot"
    body = (EXAMPLES / "contact-creation.json").read_bytes()
    for version in ("v3", "v2"):
        path = str(EXAMPLES / "contact-creation.json")
        assert main(["webhook", "sign", path, "--url", url, "--signature", version]) == 0
        lines = capsys.readouterr().out.splitlines()
        headers = Headers([tuple(line.split(": ", 1)) for line in lines])  # type: ignore[misc]
        verdict = verify(
            headers=headers,
            method="POST",
            uri=url,
            body=body,
            secret=SECRET,
            now=datetime.now(UTC),
        )
        assert verdict.ok and verdict.version == version, verdict


def test_sign_without_a_secret_says_which_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HUBSPOT_CLIENT_SECRET", raising=False)
    assert main(["webhook", "sign", str(EXAMPLES / "contact-creation.json")]) == 2
    assert "HUBSPOT_CLIENT_SECRET is not set" in capsys.readouterr().err


def test_sign_refuses_a_file_that_is_not_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", SECRET)
    (tmp_path / "bad.json").write_text('{"objectId": 1,\n "portalId": }')
    assert main(["webhook", "sign", str(tmp_path / "bad.json")]) == 2
    assert "bad.json is not JSON: Expecting value: line 2" in capsys.readouterr().err


@pytest.fixture
def live_service(sqlite_url: str) -> Iterator[tuple[str, Services]]:
    engine = make_engine(sqlite_url)
    migrate.upgrade(engine)
    services = Services(settings=make_settings(DATABASE_URL=sqlite_url), engine=engine)
    server = make_server("127.0.0.1", 0, create_app(services=services), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/webhooks/hubspot", services
    finally:
        server.shutdown()
        server.server_close()
        engine.dispose()


def test_send_posts_it_signed_to_the_service(
    live_service: tuple[str, Services],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, services = live_service
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", SECRET)
    path = str(EXAMPLES / "workflow-contact.json")
    assert main(["webhook", "send", path, "--url", url, "--signature", "v2"]) == 0
    assert capsys.readouterr().out.startswith('200 OK: {"received":1}')
    with services.engine.connect() as conn:
        assert conn.execute(select(webhook_batches.c.source)).scalars().all() == ["workflow"]
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", "another-secret")
    assert main(["webhook", "send", path, "--url", url]) == 1
    assert capsys.readouterr().out.startswith("401")
