"""The tag never breaks the host page: with sitecue unreachable the page carries on without
an error, and nothing it hid for anti-flicker stays hidden."""

from __future__ import annotations

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
