"""Browser tests: Playwright driving Debian's chromium against a live server process.

Without chromium these tests skip with one line; with CI=true they fail instead.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Error, Page, Playwright, sync_playwright

from tests.support import LiveServer, Mailbox, live_server, smtp_env, smtp_server, unavailable

CHROMIUM = "/usr/bin/chromium"
# Flags that keep chromium quiet on a machine with no outside network.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def chromium(playwright_driver: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        unavailable("Debian's chromium is not installed (apt-get install -y chromium)")
    try:
        browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Error as error:
        unavailable(f"chromium did not start: {str(error).splitlines()[0]}")
        raise
    yield browser
    browser.close()


@dataclass
class Stage:
    """A live Pitpass, its mailbox and a way to open fresh browser pages."""

    server: LiveServer
    mailbox: Mailbox
    chromium: Browser

    def new_page(self) -> Page:
        context = self.chromium.new_context(base_url=self.server.base_url)
        context.set_default_timeout(15_000)
        return context.new_page()

    def sign_in(self, email: str, password: str, next_path: str = "/account") -> Page:
        """A fresh browser signed in as `email` (password, then the emailed code)."""
        page = self.new_page()
        sent_before = self.mailbox.count_for(email)
        page.goto(f"/signin?next={next_path}")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Continue").click()
        page.get_by_label("Code").fill(self.mailbox.code_for(email, sent_before + 1))
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"**{next_path}")
        return page

    def add_member(self, email: str, password: str, *, staff: bool = False) -> None:
        """Made in-process (tests/support.py's Provisioner), not through the CLI."""
        self.server.provision.member(email, password, staff=staff)


@pytest.fixture
def stage(chromium: Browser, tmp_path: Path) -> Iterator[Stage]:
    extra = {"PITPASS_SIGNIN_FAILURES_PER_ACCOUNT_IP": "3/15 minutes"}
    with smtp_server() as (mailbox, port), live_server(tmp_path, smtp_env(port) | extra) as server:
        yield Stage(server, mailbox, chromium)


# The populated world of every page (tests/browser/pages.py), one per test module.
from tests.browser.pages import world  # noqa: E402, F401
