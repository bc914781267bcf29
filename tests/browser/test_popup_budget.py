"""The site-wide overlay budget in a real browser: a click trigger decides the page view
again, and the popup it would bring is refused while the page already has one."""

from __future__ import annotations

from typing import Any

from pages import hold_decisions, open_page, pause_time, release, wait_until_held
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


def test_a_click_while_a_decision_is_on_its_way_waits_for_its_answer(
    context: BrowserContext, lab_url: str
) -> None:
    """A trigger's decision goes only once the one on its way is answered (and the state it
    sets is in): sent at once, both would be decided from the same state, and each could
    give the page view an overlay of its own."""
    page = context.new_page()
    pause_time(page)
    sent: list[dict[str, Any]] = []
    page.on("request", lambda r: "/v1/decide" in r.url and sent.append(r.post_data_json))
    open_page(page, f"{lab_url}/budget/")
    expect(page.locator(".sc-modal")).to_contain_text("welcome shown")
    held = hold_decisions(page)
    page.locator(".add").dispatch_event("click")
    page.clock.run_for(100)  # past the tag's 50 ms gathering: the click's decision is asked
    wait_until_held(page, held)
    page.locator(".add").dispatch_event("click")
    page.clock.run_for(1_000)
    assert len(sent) == 2 and len(held) == 1  # the second click waits for the first's answer
    earlier = {b["call"] for b in sent}
    with page.expect_response(
        lambda r: "/v1/decide" in r.url and r.request.post_data_json["call"] not in earlier
    ) as later:
        release(page, held)
    assert [len(b["events"]) for b in sent] == [0, 1, 1] and sent[2]["view"] == sent[0]["view"]
    assert [d["rule"] for d in later.value.json()["decisions"]] == ["welcome"]
    expect(page.locator(".sc-slide-in")).to_have_count(0)
    expect(page.locator(".sc-modal")).to_have_count(1)
