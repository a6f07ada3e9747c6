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

INJECTED = "<b id='injected'>Bold</b> & Co"

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
    WebDriverException,
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
    found = _wait(check, timeout)
    if found:
        return found
    text = driver.find_element(By.TAG_NAME, "body").text
    raise AssertionError(f"timed out waiting for {what}; the page says:\n{text}")


# One script reads an element's text: the page reloads itself every 3 s, and a find followed by a
# separate read can straddle a reload (Chromium then answers "stale element" or "Node with given
# id does not belong to the document").
_TEXT_AT = """
const node = document.evaluate(arguments[0], document, null,
    XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue;
return node === null ? null : node.innerText;
"""


def _text_at(browser: Any, xpath: str) -> str:
    text = browser.execute_script(_TEXT_AT, xpath)
    if text is None:
        raise NoSuchElementException(f"nothing at {xpath}")
    return str(text)


def _conv_xpath(person: str) -> str:
    return f"//div[@class='conv'][h3[contains(., '{person}')]]"


def _conv(browser: Any, person: str) -> Any:
    return browser.find_element(By.XPATH, _conv_xpath(person))


def _shows(browser: Any, person: str, text: str) -> Callable[[], bool]:
    return lambda: text in _text_at(browser, _conv_xpath(person))


def _lead_cell(browser: Any, contact: int, cell: int) -> str:
    return _text_at(browser, f"//tr[@class='lead'][@data-contact='{contact}']/td[{cell + 1}]")


def _detached(exc: WebDriverException) -> bool:
    """An element lost to the page's own reload: worth another try, unlike any other error."""
    if isinstance(exc, (NoSuchElementException, StaleElementReferenceException)):
        return True
    return "does not belong to the document" in (exc.msg or "")


def until_done(
    browser: Any,
    page: str,
    person: str,
    label: str,
    done: Callable[[], Any],
    fill: Callable[[Any], None] | None = None,
    timeout: float = 120,
) -> None:
    """Press `label` on the newest message of `person`'s conversation (and fill and submit its
    modal) until `done()`. Each escalation step changes the lead, which makes older buttons
    "out of date" (the service refuses them, as Slack users would see), and the page reloads
    itself every 3 s, which can swallow a click: so a step is retried on a fresh page."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        browser.get(page)
        try:
            buttons = _conv(browser, person).find_elements(
                By.XPATH, f'.//button[normalize-space()="{label}"]'
            )
            if buttons:
                buttons[-1].click()
                if fill is not None:
                    form = _wait(lambda: browser.find_element(By.ID, "modal-form"), 10)
                    if form is not None:
                        assert label in browser.find_element(By.ID, "modal").text
                        fill(form)
                        form.find_element(By.ID, "modal-submit").click()
        except WebDriverException as exc:
            if not _detached(exc):
                raise
        if _wait(done, 8):
            return
    eventually(done, 1, f"{label} by {person} to take effect", browser)


def _wait(check: Callable[[], Any], seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = check()
        except WebDriverException as exc:
            if not _detached(exc):
                raise
            found = None
        if found:
            return found
        time.sleep(0.25)
    return None


def test_nudge_then_every_button_through_the_signed_actions_endpoint(
    tmp_path: Path, browser: Any
) -> None:
    """Ada (Alex): Log touch -> handled. Grace (Blair): I'm on it, then Snooze. Pat (Casey) is
    left alone until the ladder reaches the team channel, where his manager reassigns him."""
    demo = DemoProcess(tmp_path, "--leads", "3", "--speed", "2", "--duration", "240")
    try:
        page = demo.url("page")
        browser.get(page)
        assert "sla-bot demo" in browser.title

        # A lead made on the page, its CRM text built to break out of HTML if it is not escaped.
        browser.get(page.rstrip("/") + "/leads/new")
        form = browser.find_element(By.ID, "create-lead")
        company = form.find_element(By.NAME, "company")
        company.clear()
        company.send_keys(INJECTED)
        Select(form.find_element(By.NAME, "owner")).select_by_visible_text("no owner")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        eventually(lambda: INJECTED in _lead_cell(browser, 104, 0), 30, "the new lead", browser)

        eventually(_shows(browser, "Alex Rep", "Ada Lovelace"), 60, "a message to Alex", browser)

        def log_call(form: Any) -> None:
            Select(form.find_element(By.NAME, "kind")).select_by_value("call")

        def handled() -> bool:
            state = _lead_cell(browser, 101, 2)
            return (
                state in ("touched", "in_cadence")
                and _shows(browser, "Alex Rep", "Handled: call")()
            )

        until_done(browser, page, "Alex Rep", "Log touch", handled, log_call)

        until_done(browser, page, "Blair Rep", "I'm on it", _shows(browser, "Blair Rep", "On it"))

        def fifteen_minutes(form: Any) -> None:
            Select(form.find_element(By.NAME, "until")).select_by_visible_text("15 minutes")

        snoozed = _shows(browser, "Blair Rep", "Snoozed until")
        until_done(browser, page, "Blair Rep", "Snooze", snoozed, fifteen_minutes)

        channel = "#sales-escalations"
        eventually(_shows(browser, channel, "Pat O'Brien"), 90, "the channel post", browser)
        owner = _lead_cell(browser, 103, 1)  # after the ladder's own reassignment

        def reassigned() -> bool:
            return _lead_cell(browser, 103, 1) not in (owner, "")

        until_done(browser, page, channel, "Reassign", reassigned, lambda form: None)
        assert browser.find_elements(By.ID, "injected") == []  # shown as text, never as HTML
    finally:
        demo.stop()
    assert demo.leftovers() == []
