"""The demo shop's catalogue pages in a real browser: a product page describes its product
to sitecue, its button puts it in the cart (kept in the browser) and tells sitecue, and the
checkout sends the purchase with its value; a link to the shop's real address leads to the
same page of the demo, wherever it is opened."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pages import open_page
from playwright.sync_api import BrowserContext, Page, Response, expect

from conftest import CHECKOUT
from sitecue.demo_shop import CATALOG, read_catalog

# What the page asks of sitecue, recorded: the page's side of the contract, whatever the tag
# then sends. Every function assigned to window.sitecue (the page's queue, then the tag's)
# is wrapped so its calls are kept in window.calls.
RECORD = """window.calls = [];
let current;
Object.defineProperty(window, 'sitecue', {
  configurable: true,
  get() { return current; },
  set(f) {
    current = function () {
      window.calls.push(JSON.parse(JSON.stringify(Array.from(arguments))));
      return f.apply(this, arguments);
    };
  },
});"""

PRODUCTS = {p.id: p for p in read_catalog(CHECKOUT / "config" / CATALOG)}
STOVE, GAS = PRODUCTS["stove-compact-gas"], PRODUCTS["gas-canister-230"]


def decided_with(words: str) -> Callable[[Response], bool]:
    """The tag's /v1/decide answers to a request whose body holds ``words``."""
    return lambda r: "/v1/decide" in r.url and words in (r.request.post_data or "")


def add_to_cart(page: Page) -> dict[str, Any]:
    """Click the page's add-to-cart button; the decision request that reports it."""
    with page.expect_response(decided_with('"add_to_cart"')) as answer:
        page.locator(".add-to-cart[data-sc-product]").click()
    return dict(json.loads(answer.value.request.post_data or "{}"))


def test_a_product_page_describes_its_product_and_its_button_adds_it_to_the_cart(
    context: BrowserContext, demo_url: str
) -> None:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    with page.expect_request(lambda r: "/v1/decide" in r.url) as first:
        open_page(page, f"{demo_url}/shop/products/{STOVE.id}")
    sent = first.value.post_data_json
    assert sent["page"]["data"]["product"] == STOVE.described()
    expect(page.get_by_role("heading", name=STOVE.name)).to_be_visible()
    expect(page.get_by_role("img", name=STOVE.name)).to_be_visible()

    body = add_to_cart(page)
    assert [e["name"] for e in body["events"]] == ["add_to_cart"]
    expect(page.get_by_role("button", name="Added to cart")).to_be_visible()
    open_page(page, f"{demo_url}/shop/products/{GAS.id}")
    add_to_cart(page)

    open_page(page, f"{demo_url}/shop/cart.html")
    lines = page.locator("#cart-lines li[data-product]")
    expect(lines).to_have_count(2)
    expect(page.locator("#cart-lines .total")).to_have_text("Total €50.90")
    assert errors == []


def test_the_checkout_sends_the_purchase_with_its_value_and_products_and_empties_the_cart(
    context: BrowserContext, demo_url: str
) -> None:
    page = context.new_page()
    page.add_init_script(RECORD)
    open_page(page, f"{demo_url}/shop/products/{STOVE.id}")
    add_to_cart(page)
    add_to_cart(page)  # two of them
    assert (
        page.evaluate("window.calls")[-2:] == [["event", "add_to_cart", {"product": STOVE.id}]] * 2
    )
    open_page(page, f"{demo_url}/shop/products/{GAS.id}")
    add_to_cart(page)
    open_page(page, f"{demo_url}/shop/checkout.html")
    expect(page.locator("#cart-lines")).to_contain_text("× 2 €88.00")
    expect(page.locator("#cart-lines .total")).to_have_text("Total €94.90")
    # Sent as the site's purchase event: decided again where a rule counts it, else posted.
    with page.expect_request(
        lambda r: "/v1/" in r.url and '"purchase"' in (r.post_data or "")
    ) as sent:
        page.get_by_role("button", name="Place order").click()
    sent.value.response()
    order = {"value": 94.9, "products": [STOVE.id, GAS.id]}
    assert page.evaluate("window.calls")[-1] == ["event", "purchase", order]
    expect(page.get_by_role("button", name="Thank you for your order!")).to_be_disabled()
    assert page.evaluate("localStorage.getItem('demo_shop_cart')") == "[]"


def test_a_link_to_the_shops_real_address_leads_to_the_same_page_here(
    context: BrowserContext, demo_url: str
) -> None:
    """The catalogue names the shop by its address (https://shop.example/...), as the cards
    of recommendations link to it; the demo, opened elsewhere, follows such a link to its
    own copy of the page."""
    page = context.new_page()
    open_page(page, f"{demo_url}/shop/cart.html")
    page.evaluate(
        """url => document.body.insertAdjacentHTML('beforeend',
             `<a id="card" href="${url}">Gas</a>`)""",
        GAS.url,
    )
    with page.expect_response(lambda r: "/v1/decide" in r.url):
        page.locator("#card").click()
    assert page.url == f"{demo_url}/shop/products/{GAS.id}"
    expect(page.get_by_role("heading", name=GAS.name)).to_be_visible()


def test_the_category_pages_list_their_products_and_lead_to_them(
    context: BrowserContext, demo_url: str
) -> None:
    page = context.new_page()
    open_page(page, f"{demo_url}/shop/")
    with page.expect_response(lambda r: "/v1/decide" in r.url):
        page.get_by_role("navigation", name="Categories").get_by_role(
            "link", name="Kitchen"
        ).click()
    kitchen = [p for p in PRODUCTS.values() if p.category == "kitchen"]
    expect(page.locator(".products .product")).to_have_count(len(kitchen))
    with page.expect_response(lambda r: "/v1/decide" in r.url):
        page.get_by_role("link", name=GAS.name).click()
    assert page.url == f"{demo_url}/shop/products/{GAS.id}"
