"""Product signals in a real browser: the page's product (``sitecue('set', {product})``), a
click trigger inside a ``data-sc-product`` element, a purchase's products (an id the server
would refuse left out in the page), and a click on a recommended product card naming the
product and its strategy; each stored with its products. The page's clock is paused: the
tag's 50 ms gathering of a burst runs only by ``clock.run_for``."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pages import open_page, pause_time
from playwright.sync_api import BrowserContext, Page, expect


@pytest.fixture
def product_page(context: BrowserContext) -> Iterator[tuple[Page, list[dict[str, Any]]]]:
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


def decided(page: Page, act: str) -> Any:
    """Run ``act`` on the page (a script, or ``click <selector>``); the decision it asks for."""
    with page.expect_response(lambda r: "/v1/decide" in r.url) as answer:
        if act.startswith("click "):
            page.click(act.removeprefix("click "))
        else:
            page.evaluate(act)
        page.clock.run_for(60)  # past the tag's 50 ms gathering
    assert answer.value.status == 200, answer.value.text()
    return answer.value.json()


def stored(lab_env: dict[str, str], visitor: str) -> list[tuple[Any, ...]]:
    """(type, name, products, detail, value) of the visitor's events, as the lab stored them."""
    with sqlite3.connect(Path(lab_env["SITECUE_DATA_DIR"]) / "sitecue.db") as db:
        return db.execute(
            "SELECT type, name, products, detail, value FROM events"
            " WHERE site = 'signals' AND visitor = ? ORDER BY id",
            (visitor,),
        ).fetchall()


def test_product_views_carts_purchases_and_card_clicks_carry_their_products(
    product_page: tuple[Page, list[dict[str, Any]]], lab_url: str, lab_env: dict[str, str]
) -> None:
    page, calls = product_page
    first = open_page(page, f"{lab_url}/signals/")
    assert calls[0]["page"]["data"]["product"] == {"id": "sku-1", "name": "Chair", "price": 49}
    # No rule counts them, yet the tag is told to post them: the catalog's cart and purchase.
    assert {"name": "add_to_cart", "on": "click", "selector": ".add"} in first["triggers"]
    assert {"name": "purchase", "on": "custom"} in first["triggers"]
    card = page.locator('#cards a[data-sc-product="sku-5"]')
    expect(card).to_be_visible()

    # A click on the button's label, inside the product's element: about that product.
    decided(page, "click .add span")
    assert calls[-1]["events"][0]["name"] == "add_to_cart"
    assert calls[-1]["events"][0]["products"] == ["sku-2"]

    # A purchase's lines; the id the server would refuse is left out, the call goes through.
    decided(
        page,
        "sitecue('event', 'purchase', {value: 99.5, product: 'sku-9',"
        " products: ['sku-1', 'not an id', 'sku-3']})",
    )
    assert calls[-1]["events"][0]["products"] == ["sku-9", "sku-1", "sku-3"]
    assert calls[-1]["events"][0]["value"] == 99.5

    # A click on a recommended product's card: a click of the widget, with the product.
    with page.expect_request(
        lambda r: "/v1/events" in r.url and '"click"' in (r.post_data or "")
    ) as request:
        card.click()
    event = json.loads(request.value.post_data or "{}")["events"][0]
    assert (event["type"], event["rule"], event["variant"]) == ("click", "cards", "row")
    assert (event["product"], event["strategy"]) == ("sku-5", "bought_together")
    response = request.value.response()
    assert response is not None and response.status == 204  # stored before the answer

    rows = stored(lab_env, first["visitor"])
    assert ("product_view", None, '["sku-1"]', None, None) in rows
    assert ("trigger", "add_to_cart", '["sku-2"]', None, None) in rows
    assert ("trigger", "purchase", '["sku-9","sku-1","sku-3"]', None, 99.5) in rows
    # The lab's cards are fixed markup, not a widget that recommends: the server keeps the
    # click as the widget's, without the product (test_products covers one that does).
    assert ("click", None, None, None, None) in rows
