"""DESIGN scenario 4 in a real browser: a reader who clicks a campaign link is identified,
the token leaves the address bar at once, and their anonymous history joins their profile,
so it counts on their other devices too."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable

from pages import open_page
from playwright.sync_api import BrowserContext, expect
from test_paywall_faq import read_article, visitor_in_variant


def test_a_campaign_link_identifies_and_brings_the_history_along(
    browser_context_pair: tuple[BrowserContext, BrowserContext],
    demo_url: str,
    operator: Callable[..., str],
) -> None:
    laptop_context, phone_context = browser_context_pair
    for context, n in ((laptop_context, 1), (phone_context, 2)):  # not the paywall test's
        visitor = visitor_in_variant("paywall-faq", [0.9, 0.1], wanted=0, nth=n)
        context.add_cookies([{"name": "sc_vid", "value": visitor, "url": f"{demo_url}/sc/"}])
    token = operator("token", "mint", "--site", "news", "--contact", "reader-42")
    key = operator("apikey", "create", "--site", "news")

    laptop = laptop_context.new_page()
    for n in (1, 2):  # two paywalls, anonymously
        read_article(laptop, demo_url, n)
        expect(laptop.locator("#paywall")).to_be_visible()
    answer = open_page(laptop, f"{demo_url}/news/?utm_source=mail&sc_t={token}")
    assert answer["identified"] is True
    assert laptop.url == f"{demo_url}/news/?utm_source=mail"  # the token is gone, the rest stays
    assert "sc_t" not in laptop.evaluate("document.referrer + location.href")

    request = urllib.request.Request(
        f"{demo_url}/sc/v1/decisions?site=news&contact=reader-42",
        headers={"authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request) as response:
        profile = json.load(response)["items"]
    urls = {d["url"] for d in profile}
    assert f"{demo_url}/news/articles/1.html" in urls and f"{demo_url}/news/articles/2.html" in urls

    phone = phone_context.new_page()  # the same link, opened on the phone: one more paywall
    with phone.expect_response(
        lambda r: "/v1/decide" in r.url and '"pageview":false' in (r.request.post_data or "")
    ):
        phone.goto(f"{demo_url}/news/articles/3.html?sc_t={token}")
    faq = phone.locator(".sc-faq")
    expect(faq).to_be_visible()  # the third paywall of the person, the first of the phone
    expect(faq).to_contain_text("Try us free for 7 days")
