"""Debian's headless Chromium, driven by Playwright, against pytest-django's live server.

`make test` installs Chromium through apt when it is missing (`make browser`); Playwright's own
browser downloads are never used. One browser per test module, one context (cookies, session)
per signed-in person.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from apps.accounts.tests.factories import DEFAULT_PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium package")
    # Playwright's sync API keeps an asyncio loop registered on this thread, so Django would take
    # every ORM call the test makes between two browser steps for a call from async code. Those
    # calls never run concurrently with the loop (it only runs inside Playwright's own calls), so
    # the check is lifted for the browser tests, and only while the browser is up.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_context(browser) -> Iterator[Callable[[], BrowserContext]]:
    """`new_context()`: a fresh browser session (its own cookies), closed after the test."""
    contexts: list[BrowserContext] = []

    def make() -> BrowserContext:
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def signed_in(new_context, live_server) -> Callable[..., Page]:
    """`signed_in(user, next="/admin/")`: a page of a new session, logged in through the admin's
    login form as that user (password: the factories' default)."""

    def sign_in(user, next: str = "/admin/") -> Page:
        page = new_context().new_page()
        page.goto(f"{live_server.url}/admin/login/?next={next}")
        page.fill("#id_username", user.email)
        page.fill("#id_password", DEFAULT_PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}{next}")
        return page

    return sign_in


@pytest.fixture
def screenshot() -> Callable[..., Path]:
    """`screenshot(page, "queue")`: saves test-artifacts/screenshots/queue.png."""

    def save(page: Page, name: str, *, full_page: bool = False) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return save
