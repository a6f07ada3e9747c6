"""The demo page in real headless Chromium: a nudge appears, Log touch -> modal -> handled.

Chromium is driven with Selenium through Debian's chromedriver (`apt-get install chromium
chromium-driver`, which .ci/run does). Where either is missing the test is skipped, saying so.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.demo.running import DemoProcess

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

from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402


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


def eventually(check: Callable[[], Any], timeout: float, what: str, driver: Any) -> Any:
    """Retry `check` (the page refreshes itself every 3 s) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except (NoSuchElementException, StaleElementReferenceException):
            found = None
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; page text:\n{driver.page_source[:4000]}")


def test_nudge_then_log_touch_marks_the_lead_handled(tmp_path: Path, browser: Any) -> None:
    demo = DemoProcess(tmp_path, "--leads", "1", "--duration", "150")
    try:
        page = demo.url("page")
        browser.get(page)
        assert "sla-bot demo" in browser.title

        def nudge() -> Any:
            conv = browser.find_element(
                By.XPATH, "//div[@class='conv'][h3[contains(., 'Alex Rep')]]"
            )
            return conv if "First touch for Ada Lovelace" in conv.text else None

        eventually(nudge, 60, "the first nudge in Alex Rep's DM", browser)

        def press_log_touch() -> bool:
            conv = browser.find_element(
                By.XPATH, "//div[@class='conv'][h3[contains(., 'Alex Rep')]]"
            )
            conv.find_element(By.XPATH, ".//button[normalize-space()='Log touch']").click()
            return True

        eventually(press_log_touch, 20, "the Log touch button", browser)
        form = eventually(
            lambda: browser.find_element(By.ID, "modal-form"), 20, "the Log touch modal", browser
        )
        assert "Log touch" in browser.find_element(By.ID, "modal").text
        Select(form.find_element(By.NAME, "kind")).select_by_value("call")
        form.find_element(By.ID, "modal-submit").click()

        def handled() -> bool:
            row = browser.find_element(By.CSS_SELECTOR, "tr.lead[data-contact='101']")
            state = row.find_element(By.CSS_SELECTOR, "td.state").text
            conv = browser.find_element(
                By.XPATH, "//div[@class='conv'][h3[contains(., 'Alex Rep')]]"
            )
            return state in ("touched", "in_cadence") and "Handled: call" in conv.text

        eventually(handled, 30, "the lead shown as handled", browser)
    finally:
        demo.stop()
    assert demo.leftovers() == []


def test_crm_text_is_escaped_on_the_page(tmp_path: Path, browser: Any) -> None:
    demo = DemoProcess(tmp_path, "--leads", "0", "--duration", "90")
    try:
        browser.get(demo.url("page"))
        form = browser.find_element(By.ID, "create-lead")
        company = form.find_element(By.NAME, "company")
        company.clear()
        company.send_keys("<b id='injected'>Bold</b> & Co")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        row = eventually(
            lambda: browser.find_element(By.CSS_SELECTOR, "tr.lead[data-contact='101']"),
            30,
            "the new lead in the table",
            browser,
        )
        assert "<b id='injected'>Bold</b> & Co" in row.text
        assert browser.find_elements(By.ID, "injected") == []
    finally:
        demo.stop()
