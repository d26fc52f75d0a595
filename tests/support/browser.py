"""A real headless browser for tests: the system's Chromium (Debian's package, at
``/usr/bin/chromium`` or ``TASKGATE_TEST_CHROMIUM``) driven by Playwright, which downloads
no browser of its own here.

``browser`` is one Chromium for the session; ``browser_page`` a page in a fresh context
(own cookies and storage, a 1280x800 viewport) per test, kept off the network: every
request to a host other than the server under test (127.0.0.1) is aborted and recorded,
as are the page's console messages, uncaught errors and CSP violations, for the test to
assert on.

Without Chromium the tests that use them skip, saying why; with
``TASKGATE_TEST_REQUIRE_BROWSER=1`` (CI) they fail instead.

Playwright's asynchronous API, on pytest-asyncio's session loop: its synchronous API
leaves its own event loop marked as running between calls, and every async fixture and
test after it would then fail. A browser test is therefore
``@pytest.mark.asyncio(loop_scope="session")``; the function-scoped fixtures it uses
(``live_server`` and the rest) keep their own loops.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio

if TYPE_CHECKING:
    from playwright.async_api import Browser, ConsoleMessage, Page, Route

CHROMIUM = os.environ.get("TASKGATE_TEST_CHROMIUM", "/usr/bin/chromium")
# CI sets this: there, a missing browser is a failure, not a skip.
REQUIRE_BROWSER = os.environ.get("TASKGATE_TEST_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # No traffic of the browser's own (updates, sync, field trials): the test sees the
    # page's requests only.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
LOCAL_HOSTS = {"127.0.0.1"}
TIMEOUT_MS = 30_000

# Runs in every document before its own scripts (Playwright injects it through the
# DevTools protocol, which the page's CSP does not govern): keeps the page's CSP
# violation reports where the test can read them.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.effectiveDirective} ${event.blockedURI}`);
});
"""


@dataclass
class BrowserPage:
    page: Page
    console: list[str] = field(default_factory=list)  # "type: text"
    page_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # URLs of requests off this machine

    def console_errors(self) -> list[str]:
        return [m for m in self.console if m.startswith(("error:", "warning:"))]

    async def csp_violations(self) -> list[str]:
        return list(await self.page.evaluate("() => window.__cspViolations || []"))


# The screenshots in the docs, made by the tests that check each page.
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


async def save_screenshot(page: Page, name: str) -> None:
    """A screenshot of ``page`` as docs/images/``name``."""
    IMAGES.mkdir(exist_ok=True)
    await page.screenshot(path=IMAGES / name)


def browser_unavailable() -> str | None:
    """Why no browser test can run here, or None when Chromium is there."""
    if os.access(CHROMIUM, os.X_OK):
        return None
    return (f"no Chromium at {CHROMIUM} (apt-get install chromium, or set "
            "TASKGATE_TEST_CHROMIUM to its path)")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium for the whole session; each ``launch`` gets a new, temporary
    profile (user-data dir) from Playwright, removed when the browser closes."""
    reason = browser_unavailable()
    if reason:
        if REQUIRE_BROWSER:
            pytest.fail(f"TASKGATE_TEST_REQUIRE_BROWSER=1: {reason}")
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=TIMEOUT_MS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@asynccontextmanager
async def local_page(browser: Browser, **context_options: Any) -> AsyncIterator[BrowserPage]:
    """A page in a fresh context (``context_options``: Playwright's, e.g. a viewport);
    requests off 127.0.0.1 are aborted and recorded, as are console messages, uncaught
    errors and CSP violations."""
    context = await browser.new_context(**{"viewport": VIEWPORT, **context_options},
                                        service_workers="block")
    context.set_default_timeout(TIMEOUT_MS)
    await context.add_init_script(RECORD_CSP_VIOLATIONS)
    recorded = BrowserPage(await context.new_page())

    async def only_local(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            await route.continue_()
        else:
            recorded.blocked.append(route.request.url)
            await route.abort("blockedbyclient")

    def on_console(message: ConsoleMessage) -> None:
        recorded.console.append(f"{message.type}: {message.text}")

    await context.route("**/*", only_local)
    recorded.page.on("console", on_console)
    recorded.page.on("pageerror", lambda error: recorded.page_errors.append(str(error)))
    try:
        yield recorded
    finally:
        await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def browser_page(browser: Browser) -> AsyncIterator[BrowserPage]:
    """A page in a fresh context at 1280x800 (``local_page``)."""
    async with local_page(browser) as page:
        yield page
