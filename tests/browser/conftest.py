"""Real-browser fixtures: the demo served by ``sitecue demo`` in its own process, and
Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, sync_playwright

from servers import free_port, sitecue_process

CHROMIUM = "/usr/bin/chromium"
# Without these, Chromium keeps trying to reach Google's services, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``sitecue demo`` on a free port with a fresh data directory, as a user would run it."""
    port = free_port()
    data = tmp_path_factory.mktemp("demo-data")
    env = {**os.environ, "SITECUE_DATA_DIR": str(data)}
    url = f"http://127.0.0.1:{port}"
    checkout = Path(__file__).resolve().parents[2]  # the demo reads ./config, as from a checkout
    args = ["demo", "--port", str(port)]
    with sitecue_process(args, env, data / "demo.log", f"{url}/sc/healthz", cwd=checkout):
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope: Playwright's sync API runs an event loop in the main thread while it is
    # open, which would stop other tests from running their own.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile: no cookies, as a first-time visitor."""
    context = browser.new_context()
    context.set_default_timeout(10_000)
    yield context
    context.close()
