"""sitecue.catalog: products checked field by field (every problem named), and a page's
description of its product treated as what it is, the visitor's word: its URL is the
page's own, its image on the site's origins, and it is taken only once enough distinct
visitors agree, never over the site's own product."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sitecue.catalog import (
    check_product,
    page_product,
    product_key,
    product_of,
    upsert_page_products,
)
from sitecue.config import Catalog
from sitecue.errors import BadRequest
from sitecue.protocol import ProductId
from sitecue.rules import CompiledSite
from sitecue.store import Product, Store
from sites import NEWS, site
from stores import with_store

CATALOG = Catalog(fields={"brand": "string", "rating": "number", "organic": "boolean"})
LAMP: dict[str, Any] = {
    "name": "Desk lamp",
    "url": "https://shop.example/p/lamp",
    "image": "/img/lamp.svg",
    "price": 39.5,
    "category": "lighting",
    "in_stock": False,
    "brand": "Acme",
    "rating": 4,
}


def shop(**catalog: Any) -> CompiledSite:
    return site(
        {**NEWS, "site": "shop"},
        origins=["https://shop.example", "http://localhost:8000"],
        catalog={"fields": {"brand": "string"}, **catalog},
    )


def test_a_product_is_read_with_its_declared_fields() -> None:
    product = product_of(CATALOG, "lamp-1", LAMP, now=5)
    assert product == Product(
        "lamp-1", "Desk lamp", "https://shop.example/p/lamp", "/img/lamp.svg", 39.5,
        "lighting", False, {"brand": "Acme", "rating": 4}, "site", 5,
    )  # fmt: skip
    # Only name and url are required; in stock unless said otherwise; null is unset.
    least = product_of(CATALOG, "x", {"name": "X", "url": "http://s.example", "brand": None})
    assert (least.in_stock, least.extra, least.price, least.image) == (True, {}, None, None)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"price": math.nan}, "$.price: expected a finite number"),
        ({"price": math.inf}, "$.price: expected a finite number"),
        ({"price": -1}, "$.price: expected a finite number"),
        ({"price": 10**400}, "$.price: expected a finite number"),
        ({"price": True}, "$.price: expected a finite number"),
        ({"price": "9.99"}, "$.price: expected a finite number"),
        ({"name": ""}, "$.name: expected a name of 1 to 200"),
        ({"name": "x" * 201}, "$.name: expected a name of 1 to 200"),
        ({"name": "nul\x00"}, "$.name: expected a name of 1 to 200"),
        ({"name": 7}, "$.name: expected a name"),
        ({"url": "javascript:alert(1)"}, "$.url: expected an absolute http(s) URL"),
        ({"url": "/relative"}, "$.url: expected an absolute http(s) URL"),
        ({"url": "https:\\\\evil.example"}, "$.url: expected an absolute http(s) URL"),
        ({"url": 'https://s.example/"><script>'}, "$.url: expected an absolute http(s) URL"),
        ({"url": "https://s.example:99999/"}, "$.url: expected an absolute http(s) URL"),
        ({"url": "https://s.example/" + "a" * 2048}, "$.url: expected an absolute http(s)"),
        ({"image": "data:image/svg+xml,<svg onload=alert(1)>"}, "$.image: expected an http(s)"),
        ({"image": "//evil.example/x.png"}, "$.image: expected an http(s) URL or a path"),
        ({"image": "javascript:alert(1)"}, "$.image: expected an http(s) URL or a path"),
        ({"category": "c" * 65}, "$.category: expected a category of 1 to 64"),
        ({"in_stock": "yes"}, "$.in_stock: expected true or false"),
        ({"in_stock": 1}, "$.in_stock: expected true or false"),
        ({"brand": "b" * 257}, "$.brand: expected a string of at most 256"),
        ({"rating": "high"}, "$.rating: expected a finite number"),
        ({"organic": "no"}, "$.organic: expected true or false"),
        ({"colour": "red"}, "$.colour: expected one of the fields id, name, url"),
        ({"id": "other"}, "$.id: expected the id of the path, 'lamp-1'"),
    ],
)
def test_each_wrong_field_is_a_400_naming_it(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(BadRequest) as refused:
        product_of(CATALOG, "lamp-1", {**LAMP, **fields})
    assert named in refused.value.message


def test_every_problem_is_named_at_once_and_required_fields_said_so() -> None:
    product, problems = check_product(CATALOG, {"price": -1, "oops": 1}, None)
    assert product is None
    assert [p.path for p in problems] == ["oops", "id", "name", "url", "price"]
    assert "required" in problems[2].expected
    _, not_an_object = check_product(CATALOG, ["a list"], "x")
    assert not_an_object[0].expected.startswith("expected a JSON object")


@pytest.mark.parametrize(
    ("product_id", "valid"),
    [
        ("sku-1", True),
        ("a" * 64, True),
        ("cat/lamps:42_b.x", True),
        ("a" * 65, False),
        ("-leading", False),
        ("", False),
        ("sku 1", False),
        ("sku-1\n", False),  # `$` in a pattern also matches before a final newline
        ("ünïcode", False),
    ],
)
def test_a_product_id_is_checked_whole(product_id: str, valid: bool) -> None:
    _, problems = check_product(CATALOG, {**LAMP, "id": product_id}, None)
    assert (problems == []) is valid
    # The wire checks the same pattern (msgspec searches it: no id ending in a newline).
    if valid:
        assert msgspec.convert(product_id, ProductId) == product_id
    else:
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(product_id, ProductId)


def test_product_keys_are_six_stable_bytes() -> None:
    assert product_key("sku-1") == product_key("sku-1") != product_key("sku-2")
    assert len(product_key("x" * 64)) == 6


def _page(shop_site: CompiledSite, url: str, product: Any) -> tuple[str, str | None] | None:
    raw = msgspec.Raw(msgspec.json.encode(product))
    return page_product(shop_site, url, raw)


def test_without_from_pages_only_the_id_is_read() -> None:
    shop_site = shop()
    assert _page(shop_site, "https://shop.example/p/l", {"id": "l-1", "price": "any"}) == (
        "l-1",
        None,
    )
    assert page_product(shop_site, "https://shop.example/", None) is None
    assert _page(shop_site, "https://shop.example/", None) is None
    assert page_product(site(), "https://news.example/", msgspec.Raw(b'{"id":"x"}')) is None
    with pytest.raises(BadRequest, match=r"\$\.page\.data\.product\.id: expected"):
        _page(shop_site, "https://shop.example/", {"id": "bad id"})
    with pytest.raises(BadRequest, match=r"\$\.page\.data\.product: expected an object"):
        _page(shop_site, "https://shop.example/", ["l-1"])


def test_a_page_description_takes_the_pages_own_url_never_the_claimed_one() -> None:
    shop_site = shop(from_pages=True)
    claimed = {"id": "l-1", "name": "Lamp", "url": "https://evil.example/phish", "price": 5,
               "brand": "Acme", "tracking": {"page": "own keys are ignored"}}  # fmt: skip
    found = _page(shop_site, "https://shop.example/p/l?utm_source=x&session=s#reviews", claimed)
    assert found is not None
    product_id, detail = found
    assert product_id == "l-1"
    assert detail is not None
    assert msgspec.json.decode(detail) == {
        "name": "Lamp", "url": "https://shop.example/p/l", "image": None, "price": 5.0,
        "category": None, "in_stock": True, "extra": {"brand": "Acme"},
    }  # fmt: skip
    # Canonical: the same description from another visitor is the same text.
    again = _page(
        shop_site, "https://shop.example/p/l?utm_source=y", dict(reversed(claimed.items()))
    )
    assert again == found


@pytest.mark.parametrize(
    "page_url",
    [
        "https://evil.example/p/l",  # another site's page, sent with this site's name
        "https://shop.example.evil.example/p/l",
        "http://shop.example/p/l",  # not the origin listed (https)
        "javascript:alert(1)//shop.example",
        "not a url",
    ],
)
def test_a_page_off_the_sites_origins_describes_nothing(page_url: str) -> None:
    found = _page(shop(from_pages=True), page_url, {"id": "l-1", "name": "Lamp"})
    assert found == ("l-1", None)


def test_a_page_on_an_origin_the_request_was_allowed_from_describes() -> None:
    found = page_product(
        shop(from_pages=True),
        "http://127.0.0.1:8000/shop/p/l",
        {"id": "l-1", "name": "Lamp"},
        extra_origins={"http://127.0.0.1:8000"},
    )
    assert found is not None and found[1] is not None
    assert '"url":"http://127.0.0.1:8000/shop/p/l"' in found[1]
    default_port = _page(
        shop(from_pages=True), "https://shop.example:443/p", {"id": "l", "name": "L"}
    )
    assert default_port is not None and '"url":"https://shop.example/p"' in str(default_port[1])


@pytest.mark.parametrize(
    ("image", "ok"),
    [
        ("/img/l.svg", True),
        ("https://shop.example/img/l.svg", True),
        ("http://localhost:8000/img/l.svg", True),
        ("https://evil.example/track.gif", False),
        ("//evil.example/l.svg", False),
        ("data:image/svg+xml,<svg/onload=alert(1)>", False),
        ("javascript:alert(1)", False),
        (42, False),
    ],
)
def test_a_pages_image_is_a_path_or_on_the_sites_origins(image: Any, ok: bool) -> None:
    described = {"id": "l-1", "name": "Lamp", "image": image}
    if ok:
        found = _page(shop(from_pages=True), "https://shop.example/p/l", described)
        assert found is not None and found[1] is not None
        return
    with pytest.raises(BadRequest, match=r"\$\.page\.data\.product\.image: expected"):
        _page(shop(from_pages=True), "https://shop.example/p/l", described)


@pytest.mark.parametrize(
    ("described", "field"),
    [
        ({"price": "9.99"}, "price"),
        ({"price": -3}, "price"),
        ({"name": "x" * 201}, "name"),
        ({"in_stock": "yes"}, "in_stock"),
        ({"brand": ["not", "a", "string"]}, "brand"),
        ({"category": ""}, "category"),
    ],
)
def test_a_bad_description_is_a_400_naming_the_field(described: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequest, match=rf"\$\.page\.data\.product\.{field}: expected"):
        _page(
            shop(from_pages=True), "https://shop.example/p/l", {"id": "l", "name": "L", **described}
        )


def test_odd_raw_values_are_400s_not_500s() -> None:
    for raw in (b"1e400", b"[" * 10_000 + b"]" * 10_000, b"NaN", b'"just a string"'):
        with pytest.raises(BadRequest, match=r"\$\.page\.data\.product"):
            page_product(shop(from_pages=True), "https://shop.example/", msgspec.Raw(raw))


def test_descriptions_confirmed_by_distinct_visitors_are_taken(store_url: str) -> None:
    shop_site = shop(from_pages=True)
    found = _page(shop_site, "https://shop.example/p/l", {"id": "l-1", "name": "Lamp", "price": 5})
    assert found is not None and found[1] is not None
    detail = found[1]
    forged = '{"name":"x","url":"javascript:alert(1)"}'  # not one page_product writes

    async def body(store: Store) -> list[object]:
        first = await upsert_page_products(store, "shop", [("l-1", detail, "v1")] * 3, 2, 10)
        junk = [("l-2", forged, f"v{i}") for i in range(5)]
        junk += [("l-3", "not json", f"v{i}") for i in range(5)]
        junk += [("bad id", detail, f"v{i}") for i in range(5)]
        ignored = await upsert_page_products(store, "shop", junk, 2, 11)
        taken = await upsert_page_products(store, "shop", [("l-1", detail, "v2")], 2, 12)
        return [first, ignored, taken, await store.product("shop", "l-1")]

    first, ignored, taken, product = with_store(store_url, body)
    assert (first, ignored, taken) == ([], [], ["l-1"])
    assert product == Product("l-1", "Lamp", "https://shop.example/p/l", None, 5.0, None,
                              True, {}, "page", 12)  # fmt: skip


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
_KEYS = st.sampled_from(["id", "name", "url", "image", "price", "category", "in_stock", "brand"])


@given(st.dictionaries(_KEYS, _JSON, max_size=8) | _JSON)
def test_any_value_is_a_product_or_named_problems_never_an_exception(value: Any) -> None:
    product, problems = check_product(CATALOG, value, None)
    assert (product is None) == bool(problems)
    if product is not None:  # what is stored reads back as JSON, finite
        assert msgspec.json.decode(msgspec.json.encode(product), type=Product) == product
        assert product.price is None or math.isfinite(product.price)


@given(st.dictionaries(_KEYS, _JSON, max_size=8) | _JSON, st.text(max_size=60))
def test_any_page_description_is_a_400_or_read_never_an_exception(value: Any, path: str) -> None:
    shop_site = shop(from_pages=True)
    try:
        found = page_product(shop_site, f"https://shop.example/{path}", value)
    except BadRequest as err:
        assert err.message.startswith("$.page.data.product")
        return
    if found is not None and found[1] is not None:
        detail = msgspec.json.decode(found[1])
        assert detail["url"].startswith("https://shop.example/")
        assert "?" not in detail["url"] and "#" not in detail["url"]


def test_waiting_claims_keep_no_visitor_id_nor_a_link_between_products(tmp_path: Path) -> None:
    shop_site = shop(from_pages=True)
    details = []
    for product_id in ("a-1", "b-1"):
        found = _page(
            shop_site, f"https://shop.example/p/{product_id}", {"id": product_id, "name": "N"}
        )
        assert found is not None and found[1] is not None
        details.append((product_id, found[1], "visitor-123"))
    url = f"sqlite:///{tmp_path / 'claims.db'}"

    async def body(store: Store) -> list[str]:
        return await upsert_page_products(store, "shop", details, 2, 10)

    assert with_store(url, body) == []
    with sqlite3.connect(tmp_path / "claims.db") as db:
        visitors = [row[0] for row in db.execute("SELECT visitor FROM product_claims")]
    assert len(visitors) == 2 and len(set(visitors)) == 2
    assert not any("visitor-123" in v for v in visitors)
