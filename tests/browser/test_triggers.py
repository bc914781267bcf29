"""Every trigger the tag watches, in a real browser: each one, once it happens, asks for a
new decision within the same page view, and the rule that counts it shows its widget."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pages import open_page, pause_time
from playwright.sync_api import BrowserContext, Page, expect


def shown(page: Page, name: str) -> None:
    expect(page.locator(f"#slot-{name} .sc-note")).to_have_text(f"on-{name} shown")


def not_shown(page: Page, name: str) -> None:
    expect(page.locator(f"#slot-{name} .sc-note")).to_have_count(0)


@pytest.fixture
def paused_lab(context: BrowserContext, lab_url: str) -> Iterator[Page]:
    """The lab page with its clock stopped: the timed triggers (2 s on the page, 2 s idle)
    and the tag's 50 ms gathering of a burst of triggers run only by ``clock.run_for``."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    pause_time(page)
    open_page(page, f"{lab_url}/lab/")
    # The tag remembers what to hide once it has applied its first answer, triggers bound.
    page.wait_for_function("localStorage.getItem('sc_hide_lab') !== null")
    yield page
    assert errors == []


def scroll_to(page: Page, y: int) -> None:
    """Scroll, and return once the page (the tag first: it listened first) saw the event."""
    page.evaluate(
        "y => new Promise(done => {"
        " addEventListener('scroll', () => done(), {once: true}); scrollTo(0, y); })",
        y,
    )


def test_click_on_an_element_added_later(lab: Page) -> None:
    not_shown(lab, "clicked")
    lab.evaluate(
        "document.getElementById('buttons').innerHTML = '<button class=\"buy\">Buy</button>'"
    )
    lab.get_by_role("button", name="Buy").click()
    shown(lab, "clicked")


def test_change(lab: Page) -> None:
    lab.select_option("#size", "M")
    shown(lab, "changed")


def test_visible_and_scroll_depth(lab: Page) -> None:
    not_shown(lab, "seen")
    not_shown(lab, "scrolled")
    lab.mouse.wheel(0, 1200)  # past half of the page, not yet at the footer
    shown(lab, "scrolled")
    not_shown(lab, "seen")
    lab.locator("#footer").scroll_into_view_if_needed()
    shown(lab, "seen")


def test_video_play(lab: Page) -> None:
    not_shown(lab, "played")
    lab.evaluate("document.querySelector('video').play()")
    shown(lab, "played")


def test_time_on_page_and_inactivity(paused_lab: Page) -> None:
    paused_lab.clock.run_for(1_999)
    not_shown(paused_lab, "stayed")
    not_shown(paused_lab, "idle")
    paused_lab.clock.run_for(1 + 50)  # 2 s on the page, and the tag's 50 ms
    shown(paused_lab, "stayed")
    shown(paused_lab, "idle")  # and 2 s without a move


def test_inactivity_restarts_with_activity(paused_lab: Page) -> None:
    for x in range(6):  # keep moving for 3 s
        paused_lab.mouse.move(50 + x * 10, 50)
        paused_lab.clock.run_for(500)
        not_shown(paused_lab, "idle")
    paused_lab.clock.run_for(1_499)  # 2 s after the last move, less one millisecond
    not_shown(paused_lab, "idle")
    paused_lab.clock.run_for(1 + 50)
    shown(paused_lab, "idle")


def test_exit_intent_through_the_top(lab: Page) -> None:
    lab.mouse.move(200, 200)
    lab.mouse.move(200, 5)
    not_shown(lab, "leaving")
    lab.mouse.move(200, -20)  # out through the top, towards the tabs
    shown(lab, "leaving")


def test_custom_event(lab: Page) -> None:
    lab.evaluate("sitecue('event', 'shouted')")
    shown(lab, "shouted")


def test_spa_route_changes_are_page_views_matched_on_the_path(lab: Page) -> None:
    not_shown(lab, "routed")
    with lab.expect_response(
        lambda r: "/v1/decide" in r.url and '"pageview":true' in (r.request.post_data or "")
    ):
        lab.evaluate("history.pushState({}, '', '/lab/spa/basket')")
    shown(lab, "routed")


def test_exit_intent_on_a_phone_is_a_fast_flick_back_up(paused_lab: Page) -> None:
    scroll_to(paused_lab, 2000)
    paused_lab.clock.run_for(300)
    not_shown(paused_lab, "leaving")
    scroll_to(paused_lab, 40)  # 1,960 px back up in 300 ms
    paused_lab.clock.run_for(50)
    shown(paused_lab, "leaving")
