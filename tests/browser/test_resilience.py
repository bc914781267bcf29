"""The tag never breaks the host page: with sitecue unreachable the page carries on without
an error, and nothing it hid for anti-flicker stays hidden; a visitor's wrong clock does not
lose what it reports."""

from __future__ import annotations

import json
import re
import time

from pages import open_page
from playwright.sync_api import BrowserContext, expect


def test_with_sitecue_unreachable_the_page_carries_on(
    context: BrowserContext, lab_url: str
) -> None:
    page = context.new_page()
    open_page(page, f"{lab_url}/lab/")  # learns to hide the replace target next time
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route("**/sc/v1/**", lambda route: route.abort())
    page.goto(f"{lab_url}/lab/")
    expect(page.locator("#replace-me")).to_be_visible()  # shown again at once, not hidden
    page.evaluate("sitecue('event', 'open_modal'); sitecue('show', 'nothing')")
    page.get_by_role("button", name="Somewhere to be").click()  # the page still works
    assert errors == []
    page.unroute_all(behavior="ignoreErrors")


def test_a_clock_hours_off_still_reports_what_was_shown(
    context: BrowserContext, demo_url: str
) -> None:
    """The server refuses event times more than a minute ahead; the tag dates its events by
    the server's clock (learnt from each answer), so a visitor whose clock is three hours fast
    still has the impression counted. Each call and event carries an id of its own."""
    page = context.new_page()
    page.clock.set_system_time(time.time() + 3 * 3600)
    with (
        page.expect_request(
            lambda r: "/v1/events" in r.url and "impression" in (r.post_data or "")
        ) as sent,
        page.expect_request(lambda r: "/v1/decide" in r.url) as asked,
    ):
        page.goto(f"{demo_url}/news/")
    answer = asked.value.response().json()  # type: ignore[union-attr]
    assert re.fullmatch(r"[0-9a-z]{21}", json.loads(asked.value.post_data or "")["call"])
    response = sent.value.response()
    assert response is not None and response.status == 204
    (event,) = json.loads(sent.value.post_data or "")["events"]
    assert abs(event["at"] - answer["now"]) < 60_000
    assert re.fullmatch(r"[0-9a-z]{21}", event["id"])
