"""Every trigger the tag watches, in a real browser: each one, once it happens, asks for a
new decision within the same page view, and the rule that counts it shows its widget."""

from __future__ import annotations

from playwright.sync_api import Page, expect


def shown(page: Page, name: str) -> None:
    expect(page.locator(f"#slot-{name} .sc-note")).to_have_text(f"on-{name} shown")


def not_shown(page: Page, name: str) -> None:
    expect(page.locator(f"#slot-{name} .sc-note")).to_have_count(0)


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


def test_time_on_page_and_inactivity(lab: Page) -> None:
    not_shown(lab, "stayed")
    shown(lab, "stayed")  # after 2 s on the page
    shown(lab, "idle")  # and 2 s without a move


def test_inactivity_restarts_with_activity(lab: Page) -> None:
    for x in range(6):  # keep moving for 3 s
        lab.mouse.move(50 + x * 10, 50)
        lab.wait_for_timeout(500)
        not_shown(lab, "idle")
    shown(lab, "idle")


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


def test_exit_intent_on_a_phone_is_a_fast_flick_back_up(lab: Page) -> None:
    lab.evaluate("window.scrollTo(0, 2000)")
    lab.wait_for_timeout(300)
    not_shown(lab, "leaving")
    lab.evaluate("window.scrollTo(0, 40)")  # 1,960 px back up at once
    shown(lab, "leaving")
