"""Opening a page the way the browser tests need it: wait until the tag has its decisions.
And time under the test's control: a paused page clock, and decisions held until released,
so no test sleeps and hopes the browser was quick enough."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import Page, Route


def open_page(page: Page, url: str) -> Any:
    """Go to ``url`` and return the tag's first answer from /v1/decide."""
    with page.expect_response(lambda r: "/v1/decide" in r.url) as answer:
        page.goto(url)
    return answer.value.json()


def pause_time(page: Page) -> None:
    """Stop the page's clock (its timers and ``Date``) from the next page it loads on: time
    moves only by ``page.clock.run_for(ms)``, so however busy the machine, a timer fires
    exactly when the test says and never early."""
    start = datetime.now(UTC)
    page.clock.install(time=start)
    page.clock.pause_at(start + timedelta(seconds=1))


def hold_decisions(page: Page) -> list[Route]:
    """Hold every /v1/decide request of ``page`` until :func:`release`: an answer as slow as
    the test needs, without sleeping."""
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)

    page.route("**/v1/decide", hold)
    return held


def wait_until_held(page: Page, held: list[Route]) -> None:
    """Until the tag has asked for a decision (so it is running) and it is being held."""
    deadline = time.monotonic() + 10
    while not held:
        assert time.monotonic() < deadline, "the tag never asked for a decision"
        page.wait_for_timeout(20)  # lets Playwright deliver the intercepted request


def release(page: Page, held: list[Route]) -> None:
    """Let the held decisions through, and every later one at once."""
    for route in held:
        route.continue_()
    page.unroute("**/v1/decide")  # any held since go through with it
