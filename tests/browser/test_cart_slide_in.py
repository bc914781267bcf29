"""DESIGN scenario 3 in a real browser: after add_to_cart (a click trigger), a free express
shipping slide-in appears on the cart page, at most once a day, never after dismissal."""

from __future__ import annotations

from pages import open_page
from playwright.sync_api import BrowserContext, Page, expect


def add_to_cart(page: Page, demo_url: str) -> None:
    open_page(page, f"{demo_url}/shop/")
    expect(page.locator("#offers")).to_contain_text("10% off your first order")  # not a customer
    with page.expect_response(
        lambda r: "/v1/decide" in r.url and "add_to_cart" in (r.request.post_data or "")
    ):
        page.get_by_role("button", name="Add to cart").first.click()
    expect(page.locator(".sc-slide-in")).to_have_count(0)  # only on the cart page


def open_cart(page: Page, demo_url: str) -> list[str]:
    """Open the cart page; the rules the server decided to show there."""
    return [d["rule"] for d in open_page(page, f"{demo_url}/shop/cart.html")["decisions"]]


def test_slide_in_after_add_to_cart_then_never_after_dismiss(
    context: BrowserContext, demo_url: str
) -> None:
    page = context.new_page()
    add_to_cart(page, demo_url)
    with page.expect_request(
        lambda r: "/v1/events" in r.url and "impression" in (r.post_data or "")
    ):
        open_cart(page, demo_url)
    slide = page.locator(".sc-slide-in")
    expect(slide).to_be_visible()
    expect(slide).to_contain_text("Free express shipping")
    with page.expect_request(
        lambda r: "/v1/events" in r.url and "dismiss" in (r.post_data or "")
    ) as sent:
        slide.get_by_role("button", name="Close").click()
    sent.value.response()
    expect(slide).to_have_count(0)

    add_to_cart(page, demo_url)
    assert "free-express" not in open_cart(page, demo_url)  # decided against, not just late
    expect(page.locator(".sc-slide-in")).to_have_count(0)


def test_slide_in_at_most_once_a_day(context: BrowserContext, demo_url: str) -> None:
    page = context.new_page()
    add_to_cart(page, demo_url)
    with page.expect_request(
        lambda r: "/v1/events" in r.url and "impression" in (r.post_data or "")
    ) as sent:
        open_cart(page, demo_url)
    sent.value.response()
    expect(page.locator(".sc-slide-in")).to_be_visible()

    add_to_cart(page, demo_url)
    assert "free-express" not in open_cart(page, demo_url)  # seen today already
    expect(page.locator(".sc-slide-in")).to_have_count(0)


def test_escape_closes_the_slide_in(context: BrowserContext, demo_url: str) -> None:
    page = context.new_page()
    add_to_cart(page, demo_url)
    open_cart(page, demo_url)
    expect(page.locator(".sc-slide-in")).to_be_visible()
    with page.expect_request(lambda r: "/v1/events" in r.url and "dismiss" in (r.post_data or "")):
        page.keyboard.press("Escape")
    expect(page.locator(".sc-slide-in")).to_have_count(0)
