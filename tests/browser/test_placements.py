"""Every placement in a real browser: overlays are labelled dialogs with a visible close
button that Esc also presses; a modal takes the focus and gives it back; inline and replace
put the widget into or instead of the site's element."""

from __future__ import annotations

import pytest
from pages import hold_decisions, open_page, pause_time, release, wait_until_held
from playwright.sync_api import BrowserContext, Page, expect


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


def test_show_presents_a_waiting_widget_now(lab: Page) -> None:
    with lab.expect_response(
        lambda r: "/v1/decide" in r.url and "open_later" in (r.request.post_data or "")
    ) as answer:
        open_widget(lab, "open_later")
    (later,) = [d for d in answer.value.json()["decisions"] if d["rule"] == "show-later"]
    assert later["show"] == {"after": "60s"}
    expect(lab.locator("#slot-later .sc-note")).to_have_count(0)  # its timing says 60 s
    lab.evaluate("sitecue('show', 'show-later')")
    expect(lab.locator("#slot-later .sc-note")).to_have_text("show-later shown")


def test_a_replace_target_is_hidden_until_the_decision_and_never_long(
    context: BrowserContext, lab_url: str
) -> None:
    page = context.new_page()
    open_page(page, f"{lab_url}/lab/")  # the first visit learns which elements to hide
    target = page.locator("#replace-me")
    expect(target).to_be_visible()

    page.evaluate("sitecue('event', 'open_replace')")  # this visitor will see the replacement
    expect(page.locator(".sc-replace")).to_be_visible()
    held = hold_decisions(page)
    pause_time(page)  # the anti-flicker second never runs out while the test looks
    page.goto(f"{lab_url}/lab/", wait_until="commit")
    wait_until_held(page, held)  # the tag runs; its answer is held back
    waiting = page.evaluate("getComputedStyle(document.getElementById('replace-me')).visibility")
    assert waiting == "hidden"  # the original does not flash before its replacement
    release(page, held)
    expect(page.locator(".sc-replace .sc-note")).to_have_text("show-replace shown")


def test_anti_flicker_gives_up_after_a_second(context: BrowserContext, lab_url: str) -> None:
    page = context.new_page()
    open_page(page, f"{lab_url}/lab/")
    held = hold_decisions(page)  # the answer never comes
    pause_time(page)
    page.goto(f"{lab_url}/lab/", wait_until="domcontentloaded")
    wait_until_held(page, held)
    expect(page.locator("#replace-me")).to_be_hidden()
    page.clock.run_for(999)
    expect(page.locator("#replace-me")).to_be_hidden()
    page.clock.run_for(1)
    expect(page.locator("#replace-me")).to_be_visible()  # after a second, without the answer
    page.unroute_all(behavior="ignoreErrors")


def test_a_strict_content_security_policy_blocks_nothing(
    context: BrowserContext, lab_url: str
) -> None:
    page = context.new_page()
    page.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation', e =>"
        " window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    open_page(page, f"{lab_url}/lab/csp.html")
    page.evaluate("sitecue('event', 'open_modal')")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    overlay = page.locator(".sc-overlay")
    assert overlay.evaluate("el => getComputedStyle(el).position") == "fixed"  # styled
    assert page.evaluate("window.__violations") == []


def test_the_site_s_css_cannot_break_an_overlay_and_ours_leaves_the_site_alone(
    context: BrowserContext, lab_url: str
) -> None:
    page = context.new_page()
    open_page(page, f"{lab_url}/lab/hostile.html")
    open_widget(page, "open_modal")
    open_widget(page, "open_slide")
    overlay, slide = page.locator(".sc-overlay"), page.locator(".sc-slide-in")
    expect(slide).to_be_visible()
    style = "(el, p) => getComputedStyle(el)[p]"
    assert overlay.evaluate(style, "position") == "fixed"
    assert overlay.evaluate(style, "zIndex") == "2147483000"
    assert slide.evaluate(style, "position") == "fixed"
    assert slide.evaluate(style, "backgroundColor") == "rgb(255, 255, 255)"
    for close in page.get_by_role("button", name="Close").all():
        expect(close).to_be_visible()  # though the site hides every button
    site = page.locator("p.modal")
    assert site.evaluate(style, "color") == "rgb(0, 128, 0)"  # the site's .modal is its own


def test_data_hide_guards_even_the_first_visit(context: BrowserContext, lab_url: str) -> None:
    page = context.new_page()  # a first visit: nothing learnt yet
    held = hold_decisions(page)
    pause_time(page)
    page.goto(f"{lab_url}/lab/csp.html", wait_until="commit")
    wait_until_held(page, held)
    hidden = page.evaluate("getComputedStyle(document.getElementById('replace-me')).visibility")
    assert hidden == "hidden"
    release(page, held)
    expect(page.locator("#replace-me")).to_be_visible()  # once the answer came


def test_tab_stays_inside_the_modal(lab: Page) -> None:
    open_widget(lab, "open_modal")
    dialog = lab.get_by_role("dialog")
    expect(dialog).to_be_focused()
    names = []
    for _ in range(5):
        lab.keyboard.press("Tab")
        names.append(lab.evaluate("document.activeElement.textContent.trim()"))
    assert names == ["Join now", "No thanks", "×", "Join now", "No thanks"]
    lab.keyboard.press("Shift+Tab")
    lab.keyboard.press("Shift+Tab")
    assert lab.evaluate("document.activeElement.textContent.trim()") == "×"  # round the back
