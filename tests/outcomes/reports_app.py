"""The web app over a played history, and reading the numbers a reports page shows."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

from sqlalchemy.engine import Engine

from sla_bot.clock import FrozenClock
from sla_bot.reports import access
from sla_bot.rules import RulesHolder
from sla_bot.services import Services
from sla_bot.web.app import create_app
from tests.conftest import make_settings
from tests.outcomes.history import END, RULES, ny

SECRET_KEY = "Nd5TSyLEVVmBYuYqV3mQy2F1dr2b7o2e6bSxS5Qk0lw="  # a Fernet key (tests only)


def services_for(engine: Engine, db_url: str, **env: str) -> Services:
    settings = make_settings(
        DATABASE_URL=db_url, SLA_BOT_RULES_DIR=str(RULES), SLA_BOT_SECRET_KEY=SECRET_KEY, **env
    )
    holder = RulesHolder(RULES)
    holder.reload_if_changed()
    return Services(settings=settings, engine=engine, clock=FrozenClock(ny(END)), rules=holder)


def app_for(services: Services) -> Any:
    return create_app(services=services)


def signed(services: Services, *, days: int = 7, portal: int | None = None) -> str:
    signer = access.from_settings(services.settings)
    return signer.sign(now=services.clock.now(), lifetime=timedelta(days=days), portal=portal)


class Cells(HTMLParser):
    """Every scorecard cell: (section, group key, metric) -> (data-value, shown text)."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._section = ""
        self._open: tuple[str, str, str] | None = None
        self._value = ""
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("data-section"):
            self._section = a["data-section"] or ""
        if tag == "td" and a.get("data-metric"):
            self._open = (self._section, a.get("data-group") or "", a["data-metric"] or "")
            self._value, self._text = a.get("data-value") or "", []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._open is not None:
            self.cells[self._open] = (self._value, "".join(self._text).strip())
            self._open = None


def cells(html: str) -> dict[tuple[str, str, str], tuple[str, str]]:
    parser = Cells()
    parser.feed(html)
    return parser.cells
