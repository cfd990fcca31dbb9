"""Real Chromium (Debian's package) driven by Playwright against `brokerbridge serve` on the simulators.

Chromium is not downloaded by Playwright: the tests launch `/usr/bin/chromium` (`.ci/run` installs
it; locally: `apt-get install chromium`, or point BROKERBRIDGE_CHROMIUM at another binary).
Screenshots of every page go to `artifacts/screenshots/` at the repository root.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from browser_tab import Tab
from playwright import sync_api as playwright_sync
from serve_process import Serve, start_serve, write_config

CHROMIUM = os.environ.get("BROKERBRIDGE_CHROMIUM", "/usr/bin/chromium")
# Flags for a sandboxed CI box with no network beyond loopback (see docs/dashboard.md).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1440, "height": 900}


@pytest.fixture(scope="module")
def browser() -> Iterator[playwright_sync.Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: apt-get install -y chromium "
            "(or set BROKERBRIDGE_CHROMIUM to a Chromium binary)"
        )
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    running = start_serve(write_config(tmp_path_factory.mktemp("serve")))
    yield running
    running.stop()


@pytest.fixture
def open_tab(browser: playwright_sync.Browser) -> Iterator[Callable[[], Tab]]:
    """Open tabs in one fresh browser context (its own cookies); all closed after the test."""
    context = browser.new_context(
        viewport=VIEWPORT, locale="es-AR", timezone_id="America/Argentina/Buenos_Aires"
    )
    context.set_default_timeout(20_000)

    def make() -> Tab:
        tab = Tab(context.new_page())
        tab.page.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
        tab.page.on("pageerror", lambda exc: tab.errors.append(f"uncaught: {exc}"))
        return tab

    yield make
    context.close()
