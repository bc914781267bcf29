"""The operator's dashboard in a real browser: sign in with an admin key, see the rules and
their status, the recent decisions with the reason for every rule, and an experiment's
results with its chart. A screenshot is kept in test-artifacts/ for people to look at."""

from __future__ import annotations

from collections.abc import Callable

from pages import open_page
from playwright.sync_api import BrowserContext, expect
from test_paywall_faq import read_article, visitor_in_variant

from conftest import CHECKOUT

ARTIFACTS = CHECKOUT / "test-artifacts"


def test_sign_in_and_read_rules_decisions_and_results(
    context: BrowserContext, demo_url: str, operator: Callable[..., str]
) -> None:
    visitor = visitor_in_variant("paywall-faq", [0.9, 0.1], wanted=0, nth=5)
    context.add_cookies([{"name": "sc_vid", "value": visitor, "url": f"{demo_url}/sc/"}])
    reader = context.new_page()
    for n in (1, 2, 3):
        read_article(reader, demo_url, n)
    expect(reader.locator(".sc-faq")).to_be_visible()  # an exposure to count
    open_page(reader, f"{demo_url}/news/")  # and the newsletter experiment
    expect(reader.locator("#newsletter")).to_contain_text("Sign me up")

    page = context.new_page()
    # The dashboard's Content-Security-Policy must let its own CSS and chart through: any
    # violation shows in the console.
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(f"{demo_url}/sc/dashboard")
    page.get_by_label("Admin key").fill("sck_000000000000_" + "a" * 32)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("This admin key is not known here")

    page.get_by_label("Admin key").fill(operator("apikey", "create", "--site", "news"))
    page.get_by_role("button", name="Sign in").click()
    news = page.get_by_role("region", name="news")
    expect(news).to_be_visible()
    expect(page.get_by_role("region", name="shop")).to_have_count(0)  # not this key's
    rules = news.locator("table.rules")
    expect(rules).to_contain_text("paywall-faq")
    expect(rules).to_contain_text("live")
    results = news.get_by_role("table", name="Results of paywall-faq")
    expect(results).to_contain_text("faq")
    expect(results).to_contain_text("control")
    newsletter = news.get_by_role("table", name="Results of newsletter")
    for variant in ("short", "long", "control"):
        expect(newsletter).to_contain_text(variant)
    chart = news.get_by_role(
        "img", name="Conversion rate and 95% interval per variant of paywall-faq"
    )
    expect(chart.locator("circle")).to_have_count(2)
    decisions = news.locator("table.decisions")
    expect(decisions).to_contain_text("paywall-faq: shown faq")
    # The log keeps no verdict for a rule whose conditions failed (store.verdicts).
    expect(decisions).to_contain_text("paywall-faq: not matched: conditions")

    header = page.locator("header")  # styled by the page's own inline CSS, which the CSP allows
    expect(header).to_have_css("background-color", "rgb(27, 27, 27)")
    expect(chart.locator("circle").first).to_have_attribute("fill", "#0a6b2a")
    assert not [text for text in console if "Content Security Policy" in text]

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Admin key")).to_be_visible()
    assert [c for c in context.cookies() if c["name"] == "sc_admin"] == []
