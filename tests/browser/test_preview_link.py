"""Preview links in a real browser: the link shows its rule and the verdict panel; the same
page without it shows neither; an expired or altered link is refused and forces nothing."""

from __future__ import annotations

import subprocess
import sys
import time

from pages import open_page
from playwright.sync_api import BrowserContext, expect

from conftest import CHECKOUT
from sitecue import preview
from sitecue.keyring import Keyring


def preview_link(demo_env: dict[str, str], demo_url: str, *args: str) -> str:
    """``sitecue preview`` as an operator runs it beside the demo (whose pages it serves)."""
    done = subprocess.run(
        [sys.executable, "-m", "sitecue.cli", "preview", "--site", "shop", *args],
        cwd=CHECKOUT,
        env={**demo_env, "SITECUE_ALLOW_ORIGINS": demo_url},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def test_a_preview_link_shows_its_rule_and_the_panel(
    context: BrowserContext, demo_url: str, demo_env: dict[str, str]
) -> None:
    link = preview_link(
        demo_env, demo_url, "--rule", "free-express", "--url", f"{demo_url}/shop/cart.html"
    )
    page = context.new_page()
    # The page's analytics layer, and every report the tag sends (recorded as it is sent).
    page.add_init_script(
        """window.dataLayer = []; window.reported = [];
        const send = navigator.sendBeacon.bind(navigator);
        navigator.sendBeacon = (u, d) => (window.reported.push(String(u)), send(u, d));"""
    )
    panel_requests: list[str] = []
    page.on("request", lambda r: panel_requests.append(r.url) if "preview.js" in r.url else None)
    # Nothing in the cart today: free-express's conditions fail, yet the link shows it.
    answer = open_page(page, link)
    assert [d["rule"] for d in answer["decisions"]] == ["free-express"]
    slide = page.locator(".sc-slide-in")
    expect(slide).to_be_visible()
    expect(slide).to_contain_text("Free express shipping")
    panel = page.locator("#sitecue-preview")
    expect(panel).to_have_attribute("data-rule", "free-express")
    rows = panel.locator("tr")
    expect(rows).to_have_count(6)  # every rule of the shop
    expect(panel.locator('tr[data-rule="free-express"]')).to_contain_text(
        "condition: triggers.add_to_cart.1d"
    )
    expect(panel.locator('tr[data-rule="first-purchase"]')).to_contain_text("would show (offer)")
    assert len(panel_requests) == 1
    # Shown and closed, yet nothing reported: not to the server, not to the page's analytics.
    slide.locator(".sc-close").first.click()
    expect(slide).to_have_count(0)
    assert page.evaluate("[window.dataLayer, window.reported]") == [[], []]

    # The same page, no link: the real decision (nothing in the cart), no panel, no script.
    panel_requests.clear()
    plain = open_page(page, f"{demo_url}/shop/cart.html")
    assert "free-express" not in [d["rule"] for d in plain["decisions"]]
    expect(page.locator("#offers")).to_contain_text("10% off your first order")
    page.wait_for_function("window.dataLayer.length > 0")  # the real impression is reported
    expect(page.locator(".sc-slide-in")).to_have_count(0)
    expect(page.locator("#sitecue-preview")).to_have_count(0)
    assert panel_requests == []


def test_an_expired_or_altered_link_is_refused_and_forces_nothing(
    context: BrowserContext, demo_url: str, demo_env: dict[str, str]
) -> None:
    secret = (CHECKOUT / demo_env["SITECUE_DATA_DIR"] / "secret").read_text().strip()
    expired = preview.mint(
        Keyring([secret]), "shop", "free-express", "slide-in", int(time.time()) - 1
    )
    good = preview_link(
        demo_env, demo_url, "--rule", "free-express", "--url", f"{demo_url}/shop/cart.html"
    )
    altered = good[:-2] + ("BB" if good.endswith("AA") else "AA")
    for link in (preview.link(f"{demo_url}/shop/cart.html", expired), altered):
        page = context.new_page()
        with page.expect_response(lambda r: "/v1/decide" in r.url) as answer:
            page.goto(link)
        assert answer.value.status == 400
        assert answer.value.json()["error"].startswith("preview: ")
        expect(page.locator("#sitecue-preview")).to_have_count(0)
        expect(page.locator(".sc-slide-in")).to_have_count(0)
        page.close()
