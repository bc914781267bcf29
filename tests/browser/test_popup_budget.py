"""The site-wide overlay budget in a real browser: a click trigger decides the page view
again, and the popup it would bring is refused while the page already has one."""

from __future__ import annotations

from typing import Any

from pages import open_page
from playwright.sync_api import BrowserContext, expect


def test_a_click_brings_no_second_popup_in_the_same_page_view(
    context: BrowserContext, lab_url: str
) -> None:
    page = context.new_page()
    sent: list[dict[str, Any]] = []
    page.on("request", lambda r: "/v1/decide" in r.url and sent.append(r.post_data_json))
    first = open_page(page, f"{lab_url}/budget/")
    assert [d["rule"] for d in first["decisions"]] == ["welcome"]
    modal = page.locator(".sc-modal")
    expect(modal).to_contain_text("welcome shown")
    with page.expect_response(
        lambda r: "/v1/decide" in r.url and "add_to_cart" in (r.request.post_data or "")
    ) as clicked:
        page.locator(".add").dispatch_event("click")  # under the modal's overlay
    assert [b["events"] for b in sent] == [
        [],
        [{"name": "add_to_cart", "at": sent[1]["events"][0]["at"]}],
    ]
    assert sent[1]["view"] == sent[0]["view"] and sent[1]["pageview"] is False
    # The same page view: the slide-in is refused, the modal given again as the same decision.
    assert [d["id"] for d in clicked.value.json()["decisions"]] == [first["decisions"][0]["id"]]
    expect(page.locator(".sc-slide-in")).to_have_count(0)
    expect(modal).to_have_count(1)

    # The next page view has a budget of its own: the slide-in, now first in line, shows.
    again = open_page(page, f"{lab_url}/budget/")
    assert [d["rule"] for d in again["decisions"]] == ["cart-help"]
    expect(page.locator(".sc-slide-in")).to_contain_text("cart-help shown")
    expect(page.locator(".sc-modal")).to_have_count(0)
