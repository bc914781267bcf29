"""Real-browser fixtures: the demo served by ``sitecue demo`` in its own process, and
Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pages import open_page
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

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


CHECKOUT = Path(__file__).resolve().parents[2]  # the demo reads ./config, as from a checkout


@pytest.fixture(scope="session")
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The demo's settings: a fresh data directory, and nothing else."""
    return {**os.environ, "SITECUE_DATA_DIR": str(tmp_path_factory.mktemp("demo-data"))}


@pytest.fixture(scope="session")
def demo_url(demo_env: dict[str, str]) -> Iterator[str]:
    """``sitecue demo`` on a free port, as a user would run it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(demo_env["SITECUE_DATA_DIR"]) / "demo.log"
    with sitecue_process(
        ["demo", "--port", str(port)], demo_env, log, f"{url}/sc/healthz", cwd=CHECKOUT
    ):
        yield url


@pytest.fixture(scope="session")
def operator(demo_env: dict[str, str]) -> Callable[..., str]:
    """Run a ``sitecue`` command as an operator would beside the running demo (same
    ``SITECUE_DATA_DIR``), and return its last line of output."""

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "sitecue.cli", *args],
            cwd=CHECKOUT,
            env=demo_env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip().splitlines()[-1]

    return run


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


@pytest.fixture
def browser_context_pair(browser: Browser) -> Iterator[tuple[BrowserContext, BrowserContext]]:
    """Two fresh profiles: two people, or one person's two devices."""
    first, second = browser.new_context(), browser.new_context()
    for c in (first, second):
        c.set_default_timeout(10_000)
    yield first, second
    first.close()
    second.close()


LAB = Path(__file__).parent / "lab"


@pytest.fixture(scope="session")
def lab_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The lab's settings: its own data directory and config (the example's plus the lab's)."""
    root = tmp_path_factory.mktemp("lab")
    return {
        **os.environ,
        "SITECUE_DATA_DIR": str(root / "data"),
        "SITECUE_CONFIG_DIR": str(root / "config"),
    }


@pytest.fixture(scope="session")
def lab_operator(lab_env: dict[str, str]) -> Callable[..., str]:
    """Run a ``sitecue`` command beside the running lab; returns its last line of output."""

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "sitecue.cli", *args],
            env=lab_env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip().splitlines()[-1]

    return run


@pytest.fixture(scope="session")
def lab_url(lab_env: dict[str, str]) -> Iterator[str]:
    """``sitecue demo`` on the example config plus a lab site with every trigger and
    placement, and a page to try them on."""
    config = Path(lab_env["SITECUE_CONFIG_DIR"])
    root = config.parent
    shutil.copytree(CHECKOUT / "config", config)
    shutil.copytree(LAB, config, dirs_exist_ok=True)
    with wave.open(str(config / "demo" / "lab" / "tone.wav"), "wb") as tone:  # 1 s of silence
        tone.setnchannels(1)
        tone.setsampwidth(2)
        tone.setframerate(8000)
        tone.writeframes(b"\0\0" * 8000)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with sitecue_process(
        ["demo", "--port", str(port)], lab_env, root / "demo.log", f"{url}/sc/healthz"
    ):
        yield url


@pytest.fixture
def lab(context: BrowserContext, lab_url: str) -> Iterator[Page]:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    open_page(page, f"{lab_url}/lab/")
    yield page
    assert errors == []
