"""DESIGN scenario 2 in a real browser: the shop shows a known customer (imported by the
operator, arriving from an email link) the loyalty offer, and everyone else the
first-purchase offer, never both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pages import open_page
from playwright.sync_api import BrowserContext, expect


def test_customers_get_the_loyalty_offer_and_no_one_gets_both(
    browser_context_pair: tuple[BrowserContext, BrowserContext],
    demo_url: str,
    operator: Callable[..., str],
    tmp_path: Path,
) -> None:
    customers = tmp_path / "customers.csv"
    customers.write_text("id,customer,loyalty_tier\nshopper-1,true,gold\n")
    operator("contacts", "import", str(customers), "--site", "shop")
    token = operator("token", "mint", "--site", "shop", "--contact", "shopper-1")

    stranger, customer = (c.new_page() for c in browser_context_pair)
    open_page(stranger, f"{demo_url}/shop/")
    expect(stranger.locator("#offers")).to_contain_text("10% off your first order")
    expect(stranger.locator("#offers")).not_to_contain_text("LOYAL15")

    open_page(customer, f"{demo_url}/shop/?sc_t={token}")
    assert "sc_t" not in customer.url  # gone from the address bar before anything else
    offers = customer.locator("#offers")
    expect(offers).to_contain_text("Members get 15% off this week")
    expect(offers).not_to_contain_text("WELCOME10")
    expect(customer.locator(".sc-offer")).to_have_count(1)

    open_page(customer, f"{demo_url}/shop/")  # later visits need no link: the cookie knows
    expect(customer.locator("#offers")).to_contain_text("LOYAL15")
    expect(customer.locator(".sc-offer")).to_have_count(1)
