"""DESIGN scenario 1 in a real browser: after the third paywall within 7 days, a subscription
FAQ with a 7-day free trial replaces the paywall; once dismissed, it stays away."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, Page, expect

from sitecue.bucketing import bucket_ranges, choose_variation, fnv_hash


def visitor_in_variant(rule: str, weights: list[float], wanted: int, nth: int = 0) -> str:
    """The ``nth`` visitor id that the rule's bucketing puts in variant ``wanted`` (ids are
    the visitor's own to choose; the cookie only carries a random one)."""
    ranges = bucket_ranges(len(weights), 1.0, weights)
    for i in range(10_000):
        candidate = f"browser-test-visitor-{i:04d}"
        n = fnv_hash(rule, candidate, 2)
        if n is not None and choose_variation(n, ranges) == wanted:
            if nth == 0:
                return candidate
            nth -= 1
    raise AssertionError("no visitor id found")


def read_article(page: Page, demo_url: str, n: int) -> None:
    """Open an article and wait until the tag has reported the paywall it saw."""
    with page.expect_response(
        lambda r: "/v1/decide" in r.url and '"pageview":false' in (r.request.post_data or "")
    ):
        page.goto(f"{demo_url}/news/articles/{n}.html")


def test_third_paywall_is_replaced_by_the_faq_until_dismissed(
    context: BrowserContext, demo_url: str
) -> None:
    visitor = visitor_in_variant("paywall-faq", [0.9, 0.1], wanted=0)
    context.add_cookies([{"name": "sc_vid", "value": visitor, "url": f"{demo_url}/sc/"}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    for n in (1, 2):
        read_article(page, demo_url, n)
        expect(page.locator("#paywall")).to_be_visible()
        expect(page.locator(".sc-faq")).to_have_count(0)

    read_article(page, demo_url, 3)
    faq = page.locator(".sc-faq")
    expect(faq).to_be_visible()
    expect(faq).to_contain_text("Try us free for 7 days")
    expect(page.locator("#paywall")).to_have_count(0)  # replaced, not stacked

    with page.expect_request(
        lambda r: "/v1/events" in r.url and "dismiss" in (r.post_data or "")
    ) as sent:
        faq.get_by_role("button", name="No thanks").click()
    sent.value.response()  # the beacon's answer carries the new state cookie
    expect(page.locator("#paywall")).to_be_visible()  # the paywall comes back in its place

    for n in (4, 5):
        read_article(page, demo_url, n)
        expect(page.locator("#paywall")).to_be_visible()
        expect(page.locator(".sc-faq")).to_have_count(0)

    cookies = {c["name"]: c for c in context.cookies(f"{demo_url}/sc/")}
    assert cookies["sc_vid"]["value"] == visitor
    assert cookies["sc_s"]["httpOnly"] and cookies["sc_s"]["sameSite"] == "Lax"
    assert cookies["sc_s"]["path"] == "/sc/"
    assert errors == []
