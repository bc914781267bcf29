"""The tag across navigation, in a real browser: on an SPA's route changes, inline and
replace widgets whose rules no longer win are taken off the page and the others do not pile
up; a click trigger on a link that leaves the page still reaches the server."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from pages import open_page, pause_time
from playwright.sync_api import BrowserContext, Page, expect

VISITOR = "navigation-visitor-0001"


def pageview_answer(page: Page) -> Callable[..., object]:
    return page.expect_response(
        lambda r: "/v1/decide" in r.url and '"pageview":true' in (r.request.post_data or "")
    )


def test_spa_route_changes_do_not_pile_up_inline_widgets(
    context: BrowserContext, lab_url: str
) -> None:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    open_page(page, f"{lab_url}/spa/")
    aside, promo = page.locator("#aside .sc-note"), page.locator("#promo .sc-note")
    expect(aside).to_have_text("everywhere shown")
    expect(promo).to_have_text("home-promo shown")
    expect(page.locator(".sc-replace .sc-note")).to_have_text("home-hero shown")
    expect(page.locator("#hero")).to_have_count(0)
    for path in ("/spa/b", "/spa/c"):
        with pageview_answer(page) as answer:
            page.evaluate(f"history.pushState({{}}, '', '{path}')")
        rules = [d["rule"] for d in answer.value.json()["decisions"]]  # type: ignore[attr-defined]
        assert rules == ["everywhere"]
        expect(promo).to_have_count(0)  # its rule no longer wins: taken off the page
        expect(page.locator("#hero")).to_have_text("The original hero")  # put back
        expect(page.locator(".sc-replace")).to_have_count(0)
        expect(aside).to_have_count(1)  # won again: one widget, not one per route
        expect(aside).to_have_text("everywhere shown")
    with pageview_answer(page):
        page.go_back()  # /spa/b
    with pageview_answer(page):
        page.go_back()  # back home: its widgets come back, once each
    expect(promo).to_have_count(1)
    expect(page.locator(".sc-replace .sc-note")).to_have_count(1)
    expect(page.locator("#hero")).to_have_count(0)
    expect(aside).to_have_count(1)
    assert errors == []


def test_a_click_trigger_on_a_link_that_leaves_the_page_is_not_lost(
    context: BrowserContext, lab_url: str, lab_operator: Callable[..., str]
) -> None:
    """The page's clock is stopped, so the tag's 50 ms gathering of triggers never ends on
    its own: the click reaches the server only through the request sent as the page is left
    (a keepalive fetch, which Playwright does not see, so the server's log is asked)."""
    context.add_cookies([{"name": "sc_vid", "value": VISITOR, "url": f"{lab_url}/sc/"}])
    key = lab_operator("apikey", "create", "--site", "spa")
    page = context.new_page()
    pause_time(page)
    open_page(page, f"{lab_url}/spa/")
    expect(page.locator("#went .sc-note")).to_have_count(0)
    page.get_by_role("link", name="Go on").click()
    page.wait_for_url(f"{lab_url}/spa/next.html")

    def asked_after_the_click() -> list[dict[str, Any]]:
        request = urllib.request.Request(
            f"{lab_url}/sc/v1/decisions?site=spa&visitor={VISITOR}",
            headers={"authorization": f"Bearer {key}"},
        )
        with urllib.request.urlopen(request) as log:
            return [d for d in json.load(log)["items"] if not d["pageview"]]

    deadline = time.monotonic() + 10
    while not (asked := asked_after_the_click()):
        assert time.monotonic() < deadline, "the click on the link never reached the server"
        page.wait_for_timeout(50)
    (decision,) = asked
    assert decision["url"] == f"{lab_url}/spa/"  # asked by the page the click left
    went = next(v for v in decision["verdicts"] if v["rule"] == "went")
    assert went["matched"] is True  # the click counted
