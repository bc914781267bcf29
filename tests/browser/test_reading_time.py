"""Reading time in a real browser, with both clocks under the test's control: the page's
(Playwright's clock) and the server's (which credits a report at most the time it saw pass).
Only active time counts: the tab visible and input within the last 30 s; once the visitor
has read over two minutes, the rule on ``reading.minutes.7d`` shows."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from pages import open_page, pause_time
from playwright.sync_api import BrowserContext, Page, expect

from servers import free_port
from sitecue.api import tag as tag_api
from sitecue.demo import build_demo_app
from sitecue.settings import Settings

CHECKOUT = Path(__file__).resolve().parents[2]
LAB = Path(__file__).parent / "lab"


class ServerClock:
    """The server's clock: the real one, moved forward with the page's."""

    def __init__(self) -> None:
        self.ahead_ms = 0

    def __call__(self) -> int:
        return time.time_ns() // 1_000_000 + self.ahead_ms


@pytest.fixture(scope="module")
def clock() -> Iterator[ServerClock]:
    with pytest.MonkeyPatch.context() as patch:
        server_clock = ServerClock()
        patch.setattr(tag_api, "_now_ms", server_clock)
        yield server_clock


@pytest.fixture(scope="module")
def site_url(tmp_path_factory: pytest.TempPathFactory, clock: ServerClock) -> Iterator[str]:
    """The demo app with the lab's sites, served in this process (so that its clock is the
    test's) by uvicorn in a thread of its own."""
    root = tmp_path_factory.mktemp("reading")
    config = root / "config"
    shutil.copytree(CHECKOUT / "config", config)
    shutil.copytree(LAB, config, dirs_exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "SITECUE_DATA_DIR": str(root / "data"),
        "SITECUE_CONFIG_DIR": str(config),
        "SITECUE_SECRETS": "reading-browser-secret-0123",
    }
    settings = Settings.load(env=env, allow_origins=frozenset({url}))
    server = uvicorn.Server(
        uvicorn.Config(build_demo_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # it seeds the demo history first: slow when busy
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)  # the server starting, not the browser: nothing to wait on but it
    yield url
    server.should_exit = True
    thread.join(timeout=10)


def advance(page: Page, clock: ServerClock, ms: int) -> None:
    """Let ``ms`` pass on the page and on the server alike."""
    clock.ahead_ms += ms
    page.clock.run_for(ms)


def set_hidden(page: Page, hidden: bool) -> None:
    """The tab goes to the background (or comes back), as the browser tells the page."""
    page.evaluate(
        """hidden => {
          Object.defineProperty(document, 'hidden', {value: hidden, configurable: true});
          Object.defineProperty(document, 'visibilityState',
                                {value: hidden ? 'hidden' : 'visible', configurable: true});
          document.dispatchEvent(new Event('visibilitychange'));
        }""",
        hidden,
    )


def read_for(page: Page, clock: ServerClock, seconds: int) -> None:
    """Read actively: a small scroll or mouse move every 20 s."""
    for i in range(seconds // 20):
        page.mouse.move(100 + i, 200)
        advance(page, clock, 20_000)


def sent(request: Any) -> Any:
    return json.loads(request.post_data or "{}")


def test_active_reading_counts_and_idle_or_hidden_time_does_not(
    context: BrowserContext, site_url: str, clock: ServerClock
) -> None:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    pause_time(page)
    answer = open_page(page, f"{site_url}/reading/")
    assert answer["reading"] is True and answer["decisions"] == []
    reader = page.locator("#reader .sc-note")

    # Five minutes without a move: only the 30 s after the page was opened count.
    advance(page, clock, 300_000)
    with page.expect_response(lambda r: "/v1/decide" in r.url) as asked:
        page.evaluate("history.pushState({}, '', '/reading/2')")  # an SPA's next page
    assert sent(asked.value.request)["read"] == 30  # its answer's cookie credits them
    expect(reader).to_have_count(0)

    # Hidden for two minutes: moves in a background tab are not reading.
    # Each beacon's answer is waited for: it carries the cookie with the reading credited,
    # which the next decision must send (waiting for the request alone races it).
    with page.expect_response(lambda r: "/v1/events" in r.url) as flushed:
        read_for(page, clock, 40)  # 40 s active first...
        set_hidden(page, True)  # ...reported as the tab is hidden
    beacon = sent(flushed.value.request)
    assert beacon == {"site": "reading", "read": 40, "call": beacon["call"]}
    read_for(page, clock, 120)
    set_hidden(page, False)

    # Back, and reading: 60 s more, reported when the page is hidden again.
    read_for(page, clock, 60)
    with page.expect_response(lambda r: "/v1/events" in r.url) as flushed:
        set_hidden(page, True)
    assert sent(flushed.value.request)["read"] == 60
    set_hidden(page, False)
    expect(reader).to_have_count(0)  # 2 minutes 10 s read, but no decision since

    with page.expect_response(lambda r: "/v1/decide" in r.url) as decided:
        page.evaluate("history.pushState({}, '', '/reading/3')")
    assert sent(decided.value.request)["read"] == 0  # all of it reported already
    assert [d["rule"] for d in decided.value.json()["decisions"]] == ["long-reader"]
    expect(reader).to_have_text("long-reader shown")
    assert errors == []


def test_a_page_cannot_claim_more_than_the_time_that_passed(
    context: BrowserContext, site_url: str, clock: ServerClock
) -> None:
    """Only the page's clock runs ahead (five minutes of reading in no time for the server):
    the server credits the time it saw pass, so the rule does not show."""
    page = context.new_page()
    pause_time(page)
    open_page(page, f"{site_url}/reading/")
    for i in range(15):
        page.mouse.move(100 + i, 200)
        page.clock.run_for(20_000)
    with page.expect_response(lambda r: "/v1/decide" in r.url) as decided:
        page.evaluate("history.pushState({}, '', '/reading/2')")
    assert sent(decided.value.request)["read"] == 300
    assert decided.value.json()["decisions"] == []
    expect(page.locator("#reader .sc-note")).to_have_count(0)
