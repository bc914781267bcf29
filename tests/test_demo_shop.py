"""The demo shop's catalogue and its pages: a few dozen products in a few categories, each
with a picture, a page that describes it to sitecue and a button that adds it to the cart;
the shop's config reads it as a catalogue and recommends from it on product and cart
pages."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from sitecue.demo import build_demo_app
from sitecue.demo_history import MARKER
from sitecue.demo_shop import CATALOG, categories, read_catalog
from sitecue.keyring import Keyring
from sitecue.rules import load_sites
from sitecue.settings import Settings
from sites import CONFIG_DIR

PRODUCTS = read_catalog(CONFIG_DIR / CATALOG)


def test_the_catalogue_has_a_few_dozen_products_in_a_few_categories() -> None:
    assert 30 <= len(PRODUCTS) <= 40
    assert len({p.id for p in PRODUCTS}) == len(PRODUCTS)
    assert len({p.name for p in PRODUCTS}) == len(PRODUCTS)
    names = categories(PRODUCTS)
    assert 4 <= len(names) <= 6
    for name in names:
        listed = [p for p in PRODUCTS if p.category == name]
        assert len(listed) >= 4 and any(p.in_stock for p in listed), name
    assert 0 < sum(not p.in_stock for p in PRODUCTS) < len(PRODUCTS) // 4
    assert all(1 <= p.price <= 500 and round(p.price, 2) == p.price for p in PRODUCTS)
    for p in PRODUCTS:  # the catalogue's own rules (see sitecue.catalog)
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}", p.id)
        assert p.url == f"https://shop.example/shop/products/{p.id}"
        assert p.image == f"/shop/images/{p.id}.svg"
        assert (CONFIG_DIR / "demo" / "shop" / "images" / f"{p.id}.svg").is_file()


def test_a_bad_catalogue_line_is_named_by_file_and_line(tmp_path: Path) -> None:
    lines = (CONFIG_DIR / CATALOG).read_text().splitlines()
    bad = json.loads(lines[1]) | {"price": -1}
    file = tmp_path / "shop.ndjson"
    file.write_text("\n".join([lines[0], json.dumps(bad)]) + "\n")
    with pytest.raises(ValueError, match=r"shop\.ndjson:2: Expected `float` >= 0.*\$\.price"):
        read_catalog(file)


def test_the_shop_config_reads_the_catalogue_and_recommends_on_product_and_cart_pages() -> None:
    shop = load_sites(CONFIG_DIR, frozenset(), Keyring(["demo-shop-test-secret-0000"]))["shop"]
    catalog = shop.config.catalog
    assert catalog is not None
    assert (catalog.cart, catalog.purchase) == ("add_to_cart", "purchase")
    assert set(catalog.fields) == {"brand"}
    widgets = shop.config.widgets
    strategies = {}
    for name in ("recently-viewed", "bought-together"):
        recommend = widgets[name].recommend
        assert widgets[name].template == "widgets/recommendations.html"
        assert recommend is not None
        strategies[name] = recommend.strategies
    # The cookie keeps as many recent views as the row shows, and no more: with its offers'
    # memory and a verified buyer's purchases, the shop's state stays under the cookie cap.
    recently = widgets["recently-viewed"].recommend
    assert recently is not None and catalog.recent == recently.limit == 4
    assert strategies == {
        "recently-viewed": ["recently_viewed"],
        "bought-together": ["bought_together"],
    }
    rules = {r.id: r.rule for r in shop.rules}
    # The cart page may show an offer, the express-shipping slide-in and both rows at once.
    assert shop.config.max_per_view >= 4
    # The rows come before the slide-in: the tag reports each impression in a request of its
    # own, each answered with the whole state cookie, so the last answer's state is kept;
    # the slide-in's (its once-a-day cap) must be that one (tests/browser/test_cart_slide_in).
    order = [r.id for r in sorted(shop.rules, key=lambda r: -r.rule.priority)]
    assert order.index("free-express") > max(order.index("recently-viewed"),
                                             order.index("bought-together"))  # fmt: skip
    for rule, selector in (("recently-viewed", "#recently-viewed"),
                           ("bought-together", "#bought-together")):  # fmt: skip
        assert rules[rule].placement.selector == selector
        where = rules[rule].when["page.path"]["$regex"]
        assert re.search(where, "/shop/products/tent-trail-2p") and re.search(
            where, "/shop/cart.html"
        )
        assert not re.search(where, "/shop/") and not re.search(where, "/shop/checkout.html")


@pytest.fixture
def demo_env(tmp_path: Path) -> dict[str, str]:
    """A copy of the bundled config and demo pages, without the made-up history."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config, ignore=shutil.ignore_patterns(MARKER))
    return {"SITECUE_DATA_DIR": str(tmp_path / "data"), "SITECUE_CONFIG_DIR": str(config)}


@pytest.fixture
def shop(demo_env: dict[str, str]) -> TestClient:
    settings = Settings.load(env=demo_env, demo=True)
    return TestClient(build_demo_app(settings), base_url="http://localhost:8000")


def described(page: str) -> dict[str, object]:
    """What the page tells sitecue with ``sitecue('set', {product: ...})``."""
    found = re.search(r"sitecue\('set', \{product: (\{.*?\})\}\);", page)
    assert found, page
    return dict(json.loads(found.group(1)))


def test_each_product_page_describes_its_product_and_adds_it_to_the_cart(
    shop: TestClient,
) -> None:
    for product in PRODUCTS:
        page = shop.get(f"/shop/products/{product.id}")
        assert page.status_code == 200
        assert described(page.text) == {
            "id": product.id, "name": product.name, "image": product.image,
            "price": product.price, "category": product.category,
            "in_stock": product.in_stock, "brand": product.brand,
        }  # fmt: skip
        button = f'class="add-to-cart" data-sc-product="{product.id}"'
        assert (button in page.text) is product.in_stock, product.id
        assert 'id="recently-viewed"' in page.text and 'id="bought-together"' in page.text
        assert '<script defer src="/shop/shop.js">' in page.text
    assert shop.get("/shop/products/no-such-thing").status_code == 404


def test_the_front_page_and_category_pages_list_the_catalogue(shop: TestClient) -> None:
    front = shop.get("/shop/").text
    assert shop.get("/shop/index.html").text == front
    for name in categories(PRODUCTS):
        assert f'href="/shop/category/{name}"' in front
        page = shop.get(f"/shop/category/{name}")
        assert page.status_code == 200
        for product in PRODUCTS:
            link = f'href="/shop/products/{product.id}"'
            assert (link in page.text) is (product.category == name)
    assert front.count('class="add-to-cart" data-sc-product=') == len(categories(PRODUCTS))
    assert shop.get("/shop/category/<script>").status_code == 404


def test_product_names_reach_the_page_as_text(demo_env: dict[str, str]) -> None:
    """A catalogue line is data: a name with markup is escaped on the page, and inside the
    script that describes it (the page's own script never ends early)."""
    config = Path(demo_env["SITECUE_CONFIG_DIR"])
    file = config / CATALOG
    first = json.loads(file.read_text().splitlines()[0])
    first["name"] = "Boots </script><script>alert(1)</script>"
    file.write_text(json.dumps(first) + "\n")
    settings = Settings.load(env=demo_env, demo=True)
    client = TestClient(build_demo_app(settings), base_url="http://localhost:8000")
    page = client.get(f"/shop/products/{first['id']}").text
    assert "<script>alert(1)" not in page
    assert described(page)["name"] == first["name"]


def test_the_cart_and_checkout_pages_carry_the_shops_script(shop: TestClient) -> None:
    for path in ("/shop/cart.html", "/shop/checkout.html"):
        page = shop.get(path).text
        assert 'id="cart-lines"' in page and '<script defer src="/shop/shop.js">' in page
    assert 'id="recently-viewed"' in shop.get("/shop/cart.html").text
    script = shop.get("/shop/shop.js").text
    assert "sitecue('event', 'add_to_cart', { product: d.scProduct })" in script
    assert "sitecue('event', 'purchase', lines.length ? order : undefined)" in script
