"""Every placement in a real browser: overlays are labelled dialogs with a visible close
button that Esc also presses; a modal takes the focus and gives it back; inline and replace
put the widget into or instead of the site's element."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect


def open_widget(page: Page, event: str) -> None:
    page.evaluate(f"sitecue('event', '{event}')")


def test_modal_takes_the_focus_and_gives_it_back(lab: Page) -> None:
    lab.get_by_role("button", name="Somewhere to be").focus()
    open_widget(lab, "open_modal")
    dialog = lab.get_by_role("dialog", name="Offer from show-modal")
    expect(dialog).to_be_visible()
    assert dialog.get_attribute("aria-modal") == "true"
    expect(dialog).to_be_focused()
    with lab.expect_request(lambda r: "/v1/events" in r.url and "dismiss" in (r.post_data or "")):
        lab.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(lab.get_by_role("button", name="Somewhere to be")).to_be_focused()


def test_modal_closes_on_its_button_and_reports_a_conversion(lab: Page) -> None:
    open_widget(lab, "open_modal")
    dialog = lab.get_by_role("dialog")
    with lab.expect_request(lambda r: "/v1/events" in r.url and "convert" in (r.post_data or "")):
        dialog.get_by_role("link", name="Join now").click()
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)


@pytest.mark.parametrize(("event", "kind"), [("open_slide", "slide-in"), ("open_bar", "bar")])
def test_slide_in_and_bar_are_labelled_and_close(lab: Page, event: str, kind: str) -> None:
    lab.get_by_role("button", name="Somewhere to be").focus()
    open_widget(lab, event)
    dialog = lab.get_by_role("dialog", name=f"Offer from show-{kind}")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_class(f"sc-w sc-{kind}")
    expect(lab.get_by_role("button", name="Somewhere to be")).to_be_focused()  # not taken
    expect(dialog.get_by_role("button", name="Close")).to_be_visible()
    lab.keyboard.press("Escape")
    expect(dialog).to_have_count(0)


def test_replace_puts_the_widget_instead_of_the_element_until_dismissed(lab: Page) -> None:
    expect(lab.locator("#replace-me")).to_have_text("The original content")
    open_widget(lab, "open_replace")
    expect(lab.locator(".sc-replace .sc-note")).to_have_text("show-replace shown")
    expect(lab.locator("#replace-me")).to_have_count(0)


def test_inline_goes_inside_the_element(lab: Page) -> None:
    open_widget(lab, "shouted")
    expect(lab.locator("#slot-shouted > .sc-inline > .sc-note")).to_have_text("on-shouted shown")
