"""Event values and page data in a real browser: purchases that add up to a rule on
``sums.purchase.30d``, and ``sitecue('set', ...)`` before the tag loads, after it, and while
its first answer is on the way; a set of a key some rule reads asks for a new decision, one
no rule reads does not. The page's clock is paused: the tag's 50 ms gathering of a burst
runs only by ``clock.run_for``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pages import hold_decisions, open_page, pause_time, release, wait_until_held
from playwright.sync_api import BrowserContext, Page, expect


def shown(page: Page, rule: str, slot: str) -> None:
    expect(page.locator(f"#slot-{slot} .sc-note")).to_have_text(f"{rule} shown")


def not_shown(page: Page, slot: str) -> None:
    expect(page.locator(f"#slot-{slot} .sc-note")).to_have_count(0)


@pytest.fixture
def values_page(context: BrowserContext) -> Iterator[tuple[Page, list[dict[str, Any]]]]:
    """A page with a paused clock, and the bodies of its /v1/decide calls as they go out."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    calls: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda r: calls.append(json.loads(r.post_data or "{}")) if "/v1/decide" in r.url else None,
    )
    pause_time(page)
    yield page, calls
    assert errors == []


def applied(page: Page) -> None:
    """Until the tag has applied its first answer (it then remembers what to hide)."""
    page.wait_for_function("localStorage.getItem('sc_hide_values') !== null")


def asks_again(page: Page, script: str) -> Any:
    """Run ``script`` on the page and return the new decision it asks for."""
    with page.expect_response(lambda r: "/v1/decide" in r.url) as answer:
        page.evaluate(script)
        page.clock.run_for(60)  # past the tag's 50 ms gathering
    return answer.value.json()


def test_purchases_add_up_to_the_rule_on_their_sum(
    values_page: tuple[Page, list[dict[str, Any]]], lab_url: str
) -> None:
    page, calls = values_page
    first = open_page(page, f"{lab_url}/values/")
    assert first["data"] == ["cart_value"] and first["decisions"] == []
    applied(page)
    assert asks_again(page, "sitecue('event', 'purchase', {value: 59.9})")["decisions"] == []
    assert calls[-1]["events"][0]["name"] == "purchase"
    assert calls[-1]["events"][0]["value"] == 59.9
    # A value the server would refuse goes as none: the purchase still counts, and the call
    # (with whatever else it carried) is not lost to a 400.
    assert asks_again(page, "sitecue('event', 'purchase', {value: 2e9})")["decisions"] == []
    assert calls[-1]["events"][0]["value"] is None
    not_shown(page, "spender")
    asks_again(page, "sitecue('event', 'purchase', {value: '45.5'})")  # a number in a string
    assert calls[-1]["events"][0]["value"] == 45.5
    shown(page, "big-spender", "spender")  # 59.9 + 45.5 = 105.4 > 100 in 30 days
    # On the next page, the sum is still there: it travels in the state cookie.
    again = open_page(page, f"{lab_url}/values/?next")
    assert [d["rule"] for d in again["decisions"]] == ["big-spender"]


def test_a_set_after_load_of_a_key_a_rule_reads_asks_for_a_new_decision(
    values_page: tuple[Page, list[dict[str, Any]]], lab_url: str
) -> None:
    page, calls = values_page
    open_page(page, f"{lab_url}/values/")
    applied(page)
    page.evaluate("sitecue('set', {category: 'cameras', logged_in: true})")  # no rule reads them
    page.clock.run_for(1_000)
    not_shown(page, "cart")
    answer = asks_again(page, "sitecue('set', {cart_value: 520})")
    assert [d["rule"] for d in answer["decisions"]] == ["big-cart"]
    shown(page, "big-cart", "cart")
    assert len(calls) == 2  # the page view, and the set of cart_value: not the others
    assert calls[1]["pageview"] is False
    assert calls[1]["page"]["data"] == {"category": "cameras", "logged_in": True, "cart_value": 520}


def test_a_set_before_the_tag_loads_goes_with_the_first_decision(
    values_page: tuple[Page, list[dict[str, Any]]], lab_url: str
) -> None:
    page, calls = values_page
    page.add_init_script(
        "window.sitecue = function () { (sitecue.q = sitecue.q || []).push(arguments) };"
        "sitecue('set', {cart_value: 900});"
    )
    first = open_page(page, f"{lab_url}/values/")
    assert [d["rule"] for d in first["decisions"]] == ["big-cart"]
    shown(page, "big-cart", "cart")
    page.clock.run_for(1_000)
    assert len(calls) == 1 and calls[0]["page"]["data"] == {"cart_value": 900}


def test_a_set_while_the_first_answer_is_on_its_way_asks_once_it_arrives(
    values_page: tuple[Page, list[dict[str, Any]]], lab_url: str
) -> None:
    page, calls = values_page
    held = hold_decisions(page)
    page.goto(f"{lab_url}/values/")
    wait_until_held(page, held)
    page.evaluate("sitecue('set', {cart_value: 600})")  # the first call went without it
    with page.expect_response(lambda r: "/v1/decide" in r.url and r.request != held[0].request):
        release(page, held)
        applied(page)
        page.clock.run_for(60)
    shown(page, "big-cart", "cart")
    assert calls[0]["page"]["data"] == {} and calls[1]["page"]["data"] == {"cart_value": 600}
