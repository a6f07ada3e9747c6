"""The /reports page in real headless Chromium: the weekly chart is drawn, a number drills down
to its leads, and a lead opens its "why" timeline.

Chromium is driven with Selenium through Debian's chromedriver (`apt-get install chromium
chromium-driver`, which .ci/run does). Where either is missing the test is skipped, saying so.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy.engine import Engine

from integrations.local_server import LocalServer
from sla_bot.db import migrate
from sla_bot.db.engine import make_engine
from tests.outcomes.history import play
from tests.outcomes.reports_app import app_for, services_for, signed

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1200",
)

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extras")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip(
        "headless Chromium tests need Debian's chromium and chromium-driver "
        "(apt-get install -y chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium.webdriver.common.by import By  # noqa: E402


class AppServer(LocalServer):
    """The web app on a loopback port, as a browser reaches it."""

    server_name = "reports-app"

    def __init__(self, app: Any) -> None:
        self.app = app

    def _wsgi(self, environ: Any, start_response: Any) -> Any:
        return self.app(environ, start_response)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def history_db(tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    url = f"sqlite:///{tmp_path / 'history.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    play(engine)
    yield engine, url
    engine.dispose()


def test_chart_and_drill_down_in_chromium(browser: Any, history_db: tuple[Engine, str]) -> None:
    engine, url = history_db
    services = services_for(engine, url)
    query = urlencode(
        {"by": "rep", "since": "2026-10-26", "until": "2026-11-09", "access": signed(services)}
    )
    with AppServer(app_for(services)) as server:
        browser.get(f"http://127.0.0.1:{server.port}/reports?{query}")
        # The weekly trend: one bar per week, with its lead count, and the compliance line.
        bars = browser.find_elements(By.CSS_SELECTOR, "svg#weekly-trend rect.bar")
        assert [b.get_attribute("data-leads") for b in bars] == ["4", "4"]
        dots = browser.find_elements(By.CSS_SELECTOR, "svg#weekly-trend circle.dot")
        assert [d.get_attribute("data-compliance") for d in dots] == ["25.0", "75.0"]
        assert bars[0].size["height"] > 0
        # Blair's breached leads: the number, then the leads behind it.
        cell = browser.find_element(
            By.CSS_SELECTOR,
            "table[data-section='SLA compliance'] td[data-group='1002'][data-metric='breached'] a",
        )
        assert cell.text == "3"
        cell.click()
        assert browser.find_element(By.ID, "drill-count").text == "3 lead(s)"
        rows = browser.find_elements(By.CSS_SELECTOR, "#drill tr.lead")
        assert [r.get_attribute("data-contact") for r in rows] == ["2", "4", "6"]
        hubspot = rows[1].find_element(By.LINK_TEXT, "open").get_attribute("href")
        assert hubspot == "https://app.hubspot.com/contacts/62515/record/0-1/4"
        # ... and one lead's "why": the breach and the ladder step that told Blair.
        rows[1].find_element(By.CSS_SELECTOR, "a.why").click()
        assert browser.find_element(By.ID, "lead-name").text == "Lead4 Example"
        steps = {
            r.get_attribute("data-step"): r.find_elements(By.TAG_NAME, "td")[2].text
            for r in browser.find_elements(By.CSS_SELECTOR, "#why tbody tr")
        }
        assert steps["first_touch.breach"] == "sent" and steps["ladder.1"] == "sent"
        facts = browser.find_element(By.ID, "facts").text
        assert "breached" in facts and "converted" in facts
