"""The demo shop recommends, end to end in a real browser: ``sitecue demo`` imports the
shop's catalogue, seeds four weeks of shoppers with planted co-purchases (the stove and its
gas canister, see sitecue.demo_history.PLANTED), runs the recommendations' job once and
serves. Then a visitor who viewed the stove and then a mug sees the stove under "Recently
viewed"; the stove's page shows its gas canister under "Often bought together" until the
visitor buys one; and a click on a card is reported as the widget's click with its product
and strategy. Every step waits for the request or element it needs; nothing sleeps."""

from __future__ import annotations

import json
from typing import Any

from pages import open_page
from playwright.sync_api import BrowserContext, Page, expect

from sitecue.demo_history import PLANTED

STOVE = "stove-compact-gas"
GAS = PLANTED[STOVE]  # most who buy the stove buy this gas canister with it
MUG = "mug-insulated"


def card(page: Page, row: str, product: str) -> Any:
    """The card of ``product`` in the row of recommendations ``row`` (its element id)."""
    return page.locator(f'#{row} a[data-sc-product="{product}"]')


def rows(answer: Any) -> dict[str, str]:
    """The html of each recommendations row a decision answer shows, by rule."""
    return {
        d["rule"]: d["html"]
        for d in answer["decisions"]
        if d["rule"] in ("recently-viewed", "bought-together")
    }


def test_recently_viewed_shows_the_product_viewed_before(
    context: BrowserContext, demo_url: str
) -> None:
    page = context.new_page()
    first = open_page(page, f"{demo_url}/shop/products/{STOVE}")
    assert "recently-viewed" not in rows(first)  # nothing viewed before: no row at all
    open_page(page, f"{demo_url}/shop/products/{MUG}")
    stove = card(page, "recently-viewed", STOVE)
    expect(stove).to_be_visible()
    expect(stove).to_have_attribute("data-sc-strategy", "recently_viewed")
    expect(page.locator("#recently-viewed")).to_contain_text("Recently viewed")
    expect(card(page, "recently-viewed", MUG)).to_have_count(0)  # not the page's own


def test_often_bought_together_shows_the_planted_partner_until_it_is_bought(
    context: BrowserContext, demo_url: str
) -> None:
    page = context.new_page()
    open_page(page, f"{demo_url}/shop/products/{STOVE}")
    gas = card(page, "bought-together", GAS)
    expect(gas).to_be_visible()
    expect(gas).to_have_attribute("data-sc-strategy", "bought_together")
    expect(page.locator("#bought-together")).to_contain_text("Often bought together")
    expect(gas.get_by_role("img")).to_have_attribute("src", f"/shop/images/{GAS}.svg")

    # Buy the gas canister: to the cart from its page, then the checkout.
    open_page(page, f"{demo_url}/shop/products/{GAS}")
    with page.expect_response(
        lambda r: "/v1/decide" in r.url and '"add_to_cart"' in (r.request.post_data or "")
    ):
        page.locator(".add-to-cart").click()
    open_page(page, f"{demo_url}/shop/cart.html")
    expect(card(page, "recently-viewed", STOVE)).to_be_visible()  # the cart page has rows too
    open_page(page, f"{demo_url}/shop/checkout.html")
    with page.expect_request(
        lambda r: "/v1/" in r.url and '"purchase"' in (r.post_data or "")
    ) as sent:
        page.get_by_role("button", name="Place order").click()
    sent.value.response()  # stored, and the state cookie knows what was bought

    again = open_page(page, f"{demo_url}/shop/products/{STOVE}")
    assert f'data-sc-product="{GAS}"' not in "".join(rows(again).values())
    expect(card(page, "bought-together", GAS)).to_have_count(0)


def test_a_click_on_a_card_is_reported_with_its_product_and_strategy(
    context: BrowserContext, demo_url: str
) -> None:
    page = context.new_page()
    open_page(page, f"{demo_url}/shop/products/{STOVE}")
    open_page(page, f"{demo_url}/shop/products/{MUG}")
    stove = card(page, "recently-viewed", STOVE)
    with page.expect_request(
        lambda r: "/v1/events" in r.url and '"click"' in (r.post_data or "")
    ) as sent:
        stove.click()
    [click] = json.loads(sent.value.post_data or "{}")["events"]
    assert click["type"] == "click" and click["rule"] == "recently-viewed"
    assert (click["product"], click["strategy"]) == (STOVE, "recently_viewed")
    # The card leads to the stove's page, on the demo's own address.
    page.wait_for_url(f"{demo_url}/shop/products/{STOVE}")
