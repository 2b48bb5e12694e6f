"""Helpers for driving chatd's page in a real browser: Debian's chromium,
driven by Playwright's Python API (never ``playwright install``: the
browser is the system's ``/usr/bin/chromium``, put there by
``make browser-deps``).

Used by ``tests/test_browser.py`` and by ``docs/screenshot.py``.  Nothing
here sleeps for a fixed time: every wait is for a condition, bounded.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.support import RunningServer, start_chatd, wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright

CHROMIUM = os.environ.get("CHATD_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-extensions",
    "--disable-default-apps", "--mute-audio", "--no-default-browser-check",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
]

# Installed before the page's own script: records every CSP violation the
# page reports, so a test can assert there were none.
_WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}:${event.lineNumber}`);
});
"""


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -e '.[test]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (make browser-deps installs Debian's chromium)"
    return None


@contextmanager
def chromium() -> Iterator[tuple[Playwright, Browser]]:
    """Playwright and one headless chromium, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS,
                                             timeout=30_000)
        try:
            yield playwright, browser
        finally:
            browser.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class WebChatd:
    """A real ``chatd`` with a TCP port and a ``--web`` port, restartable
    on the same ports (as an operator restarting it would)."""

    tcp_port: int
    web_port: int
    args: tuple[str, ...] = ()
    server: RunningServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/"

    def start(self) -> RunningServer:
        self.server = start_chatd(
            "--web", f"tcp:{self.web_port}:interface=127.0.0.1", *self.args,
            listen=(f"tcp:{self.tcp_port}:interface=127.0.0.1",), listeners=1,
        )
        wait_until(self._serving, 10, what=f"chatd serving the page on {self.url}")
        return self.server

    def _serving(self) -> bool:
        try:
            with urllib.request.urlopen(self.url, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def restart(self) -> None:
        self.stop()
        self.start()


def web_chatd(*args: str) -> WebChatd:
    """A started ``WebChatd`` on two free loopback ports."""
    chatd = WebChatd(free_port(), free_port(), args)
    chatd.start()
    return chatd


@dataclass
class PageWatch:
    """What went wrong in a page: console errors, uncaught exceptions, and
    (read from the page) CSP violations."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.console_errors.append(f"{message.type}: {message.text}")

    def on_page_error(self, error: Any) -> None:
        self.page_errors.append(str(error))

    def csp_violations(self) -> list[str]:
        return list(self.page.evaluate("window.__cspViolations || []"))

    def problems(self, *, allow: tuple[str, ...] = ()) -> list[str]:
        """Everything reported, but console lines containing one of ``allow``."""
        console = [text for text in self.console_errors if not any(part in text for part in allow)]
        return console + self.page_errors + [f"CSP: {v}" for v in self.csp_violations()]


def new_page(browser: Browser, url: str, **context_options: Any) -> tuple[BrowserContext, Page, PageWatch]:
    """A fresh context (own storage) with one page at ``url``, watched."""
    context = browser.new_context(**context_options)
    context.set_default_timeout(5_000)
    context.add_init_script(_WATCH_CSP)
    page = context.new_page()
    watch = PageWatch(page)
    page.on("console", watch.on_console)
    page.on("pageerror", watch.on_page_error)
    page.goto(url)
    return context, page, watch


def log_in(page: Page, nick: str) -> None:
    """Type ``nick`` in the login box and wait for "Logged in as"."""
    page.fill("#nick", nick)
    page.click("#login button[type=submit]")
    page.wait_for_selector(f"#whoami:has-text('Logged in as {nick}')")
