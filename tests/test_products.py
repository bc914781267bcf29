"""Product signals (sitecue.products): product views, add-to-carts and purchases recorded with
their products through the real app, the state's recent views and purchases, the person's
verified purchases at identification and refresh, and what a visitor cannot forge."""

from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from admin_keys import ORIGIN, new_key
from crm_site import MINUTE_MS, Clock
from sitecue.api import contact_events
from sitecue.api import tag as tag_api
from sitecue.app import build_app
from sitecue.catalog import ESTABLISHED_MS, product_key
from sitecue.products import (
    MAX_BOUGHT,
    bought,
    bought_keys,
    catalog_triggers,
    event_products,
    keep_products,
    recent_keys,
    server_keys,
    viewed,
)
from sitecue.protocol import PRODUCT_ID, TriggerSpec
from sitecue.recommend import Index
from sitecue.settings import Settings
from sitecue.state import Products, VisitorState
from sitecue.store import Product
from sites import site

STORE: dict[str, Any] = {
    "site": "store",
    "origins": [ORIGIN],
    "timezone": "UTC",
    "identify": {"refresh": "15m"},
    "triggers": {"add_to_cart": {"on": "click", "selector": ".add"}},
    "catalog": {
        "cart": "add_to_cart",
        "purchase": "purchase",
        "recent": 3,
        "from_pages": True,
        "fields": {"brand": "string"},
    },
    "widgets": {
        "cards": {
            "template": "widgets/recommendations.html",
            "recommend": {"strategies": ["bought_together", "popular"]},
        }
    },
    "rules": [
        {
            "id": "cards",
            "placement": {"type": "inline", "selector": "#cards"},
            "variants": [{"id": "row", "weight": 100, "widget": "cards"}],
        }
    ],
}


def keys(*ids: str) -> list[bytes]:
    return [product_key(i) for i in ids]


def catalog_site(**catalog: Any) -> Any:
    raw = copy.deepcopy(STORE)
    raw["catalog"] = {**raw["catalog"], **catalog}
    return site(raw)


# --- the state's products -------------------------------------------------------------


def test_a_view_goes_in_front_once_and_at_most_recent_are_kept() -> None:
    state = VisitorState(visitor="v")
    for product in ("a", "b", "c", "a", "d"):
        viewed(state, product, 3)
    assert recent_keys(state) == keys("d", "a", "c")  # a moved to the front; b fell off
    assert state.products is not None and len(state.products.viewed) == 18


def test_purchases_keep_the_newest_sixteen_in_front() -> None:
    state = VisitorState(visitor="v")
    bought(state, [f"p{i}" for i in range(10)])
    bought(state, [f"q{i}" for i in range(10)] + ["p0"])
    assert state.products is not None
    held = [state.products.bought[i : i + 6] for i in range(0, len(state.products.bought), 6)]
    assert len(held) == MAX_BOUGHT == 16
    assert held[:11] == keys(*[f"q{i}" for i in range(10)], "p0")
    assert held[11:] == keys("p1", "p2", "p3", "p4", "p5")


def test_bought_keys_take_the_server_list_only_from_a_verified_browser() -> None:
    state = VisitorState(visitor="v", contact="carol", verified=True)
    bought(state, ["mine"])
    assert state.products is not None
    state.products.server = server_keys(["theirs", "mine", "theirs"])
    assert len(state.products.server) == 12  # each once
    assert bought_keys(state) == set(keys("mine", "theirs"))
    state.verified = False  # merely claimed: what the site's records say is not theirs
    assert bought_keys(state) == set(keys("mine"))
    keep_products(state, catalog_site().config.catalog)
    assert state.products.server == b""


def test_products_are_kept_only_where_the_site_has_a_catalog_and_as_many_as_it_keeps() -> None:
    state = VisitorState(visitor="v")
    for product in "abcde":
        viewed(state, product, 5)
    keep_products(state, catalog_site(recent=2).config.catalog)
    assert recent_keys(state) == keys("e", "d")
    keep_products(state, None)
    assert state.products is None and recent_keys(state) == [] and bought_keys(state) == set()
    state.products = Products()
    keep_products(state, catalog_site().config.catalog)
    assert state.products is None  # an empty record is not kept


def test_an_event_names_each_product_once_the_product_first() -> None:
    assert event_products("a", ["b", "a", "c"]) == ["a", "b", "c"]
    assert event_products(None, None) is None
    assert event_products(None, ["x"]) == ["x"]


def test_the_protocol_and_the_catalog_share_the_product_id_pattern() -> None:
    from sitecue import catalog

    # catalog.PRODUCT_ID arrives with the catalogue's own module; until then protocol's.
    assert getattr(catalog, "PRODUCT_ID", PRODUCT_ID) == PRODUCT_ID


def test_the_catalog_events_are_watched_as_declared_or_as_custom_events() -> None:
    shop = catalog_site()
    assert catalog_triggers(shop.config, set()) == (
        TriggerSpec("add_to_cart", "click", ".add"),
        TriggerSpec("purchase", "custom"),
    )
    assert catalog_triggers(shop.config, {"purchase"}) == (
        TriggerSpec("add_to_cart", "click", ".add"),
    )
    assert {t.name for t in shop.watched} >= {"add_to_cart", "purchase"}
    assert catalog_triggers(site().config, set()) == ()


# --- through the real app --------------------------------------------------------------


class Store:
    """The real app on the store site, its clock, an admin key, and each browser's cookies."""

    def __init__(self, client: TestClient, key: str, clock: Clock, db: Path) -> None:
        self.client, self.key, self.clock, self.db = client, key, clock, db
        self.jars: dict[str, dict[str, str]] = {}

    def _cookies(self, browser: str) -> None:
        self.client.cookies.clear()
        for name, value in self.jars.get(browser, {"sc_vid": browser}).items():
            self.client.cookies.set(name, value, domain="news.example")

    def decide(self, browser: str, status: int = 200, **extra: Any) -> Any:
        self._cookies(browser)
        body = {"site": "store", "page": {"url": f"{ORIGIN}/p"}, **extra}
        answer = self.client.post("/v1/decide", json=body, headers={"origin": ORIGIN})
        assert answer.status_code == status, answer.text
        if status == 200:
            self.jars[browser] = dict(self.client.cookies.items())
        return answer.json()

    def view(self, browser: str, product: dict[str, Any] | None, **extra: Any) -> Any:
        page = {"url": f"{ORIGIN}/products/x?ref=1", "data": {"product": product}}
        return self.decide(browser, page=page, **extra)

    def events(self, browser: str, events: list[dict[str, Any]], status: int = 204) -> Any:
        self._cookies(browser)
        answer = self.client.post(
            "/v1/events", json={"site": "store", "events": events}, headers={"origin": ORIGIN}
        )
        assert answer.status_code == status, answer.text
        if status == 204:
            self.jars[browser] = dict(self.client.cookies.items())
            return None
        return answer.json()

    def admin(self, method: str, path: str, **kw: Any) -> Any:
        headers = {"authorization": f"Bearer {self.key}"}
        answer = self.client.request(method, path, params={"site": "store"}, headers=headers, **kw)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def token(self, contact: str) -> str:
        body = {"site": "store", "contacts": [contact], "ttl": "7d"}
        return self.admin("POST", "/v1/tokens", json=body)["tokens"][0]["token"]  # type: ignore[no-any-return]

    def state(self, browser: str) -> VisitorState:
        runtime = self.client.app.state.runtime  # type: ignore[attr-defined]
        found = runtime.codec.decode(self.jars[browser]["sc_s"], browser, "store")
        assert found is not None
        return found  # type: ignore[no-any-return]

    def rows(self, *types: str) -> list[tuple[Any, ...]]:
        """(visitor, type, name, products, detail, value) of the stored events, in order."""
        with sqlite3.connect(self.db) as db:
            marks = ", ".join("?" * len(types))
            return db.execute(
                "SELECT visitor, type, name, products, detail, value FROM events"
                f" WHERE site = 'store' AND type IN ({marks}) ORDER BY id",
                types,
            ).fetchall()


@pytest.fixture
def store(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Store]:
    config = Path(env["SITECUE_CONFIG_DIR"])
    (config / "sites" / "store.json").write_text(json.dumps(STORE))
    clock = Clock()
    monkeypatch.setattr(tag_api, "_now_ms", clock)
    monkeypatch.setattr(contact_events, "_now_ms", clock)
    key = new_key(capsys, "store")
    db = Path(env["SITECUE_DATA_DIR"]) / "sitecue.db"
    with TestClient(build_app(Settings.load(env=env)), base_url=ORIGIN) as client:
        yield Store(client, key, clock, db)


LAPTOP, PHONE, CLAIMER, STRANGER = (
    f"{n}{'0' * (20 - len(n))}" for n in ("laptop", "phone", "claimer", "stranger")
)


def test_a_product_page_view_is_recorded_with_the_description_and_kept_newest_first(
    store: Store,
) -> None:
    for product in ("a", "b", "c", "a", "d"):
        store.view(LAPTOP, {"id": product, "name": f"Product {product}"})
    rows = store.rows("product_view")
    assert [json.loads(r[3]) for r in rows] == [["a"], ["b"], ["c"], ["a"], ["d"]]
    assert {r[0] for r in rows} == {LAPTOP}
    # A new browser names the products it views, but describes none (catalog.page_view).
    assert [r[4] for r in rows] == [None] * 5
    assert recent_keys(store.state(LAPTOP)) == keys("d", "a", "c")  # catalog.recent = 3
    store.clock.now += ESTABLISHED_MS  # an hour later, with five page views: established
    store.view(LAPTOP, {"id": "a", "name": "Product a"})
    described = json.loads(store.rows("product_view")[-1][4])  # as catalog.page_product has it
    assert (described["name"], described["url"]) == ("Product a", f"{ORIGIN}/products/x")


def test_a_pages_wrong_description_loses_nothing_of_its_page_view(store: Store) -> None:
    """The page's mistake (an image elsewhere, a bad id) is logged, and the decision and the
    events sent with it stand: only the description (or, for a bad id, the product) goes."""
    cart = [{"name": "add_to_cart", "product": "sku-1"}]
    store.view(LAPTOP, {"id": "a", "name": "A", "image": "https://cdn.example/a.png"}, events=cart)
    store.view(LAPTOP, {"id": "a b", "name": "A"}, events=cart)
    assert [json.loads(r[3]) for r in store.rows("product_view")] == [["a"]]
    assert [r[2] for r in store.rows("trigger")] == ["add_to_cart", "add_to_cart"]


def test_a_product_view_is_recorded_once_per_counted_page_view(store: Store) -> None:
    store.view(LAPTOP, {"id": "a", "name": "A"}, call="call-0000001")
    store.view(LAPTOP, {"id": "a", "name": "A"}, call="call-0000001")  # a retry
    store.view(LAPTOP, {"id": "a", "name": "A"}, pageview=False)  # a re-decision
    assert len(store.rows("product_view")) == 1


def test_a_page_without_a_product_or_a_site_without_a_catalog_records_no_view(
    store: Store,
) -> None:
    store.view(LAPTOP, None)
    store.decide(LAPTOP)
    store.client.cookies.clear()
    body = {"site": "news", "page": {"url": f"{ORIGIN}/", "data": {"product": {"id": "a"}}}}
    assert store.client.post("/v1/decide", json=body, headers={"origin": ORIGIN}).is_success
    with sqlite3.connect(store.db) as db:
        assert db.execute("SELECT COUNT(*) FROM events WHERE type = 'product_view'").fetchone() == (
            0,
        )
    assert store.state(LAPTOP).products is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": [{"name": "add_to_cart", "product": "a b"}]}, "$.events[0].product"),
        ({"events": [{"name": "add_to_cart", "product": "a\n"}]}, "$.events[0].product"),
        ({"events": [{"name": "purchase", "products": []}]}, "$.events[0].products"),
        ({"events": [{"name": "purchase", "products": ["p"] * 51}]}, "$.events[0].products"),
        ({"events": [{"name": "purchase", "products": ["x" * 65]}]}, "$.events[0].products[0]"),
        ({"events": [{"name": "purchase", "products": "sku-1"}]}, "$.events[0].products"),
    ],
)  # fmt: skip
def test_bad_products_in_a_decision_are_a_400_naming_them(
    store: Store, body: dict[str, Any], field: str
) -> None:
    answer = store.decide(LAPTOP, status=400, **body)
    assert field in answer["error"]


def test_cart_and_purchase_events_carry_their_products_through_decide(store: Store) -> None:
    answer = store.decide(
        LAPTOP,
        events=[
            {"name": "add_to_cart", "product": "sku-1"},
            {"name": "purchase", "value": 99.5, "products": ["sku-1", "sku-2", "sku-1"]},
            {"name": "newsletter"},
        ],
    )
    # Watched though no rule counts them: the tag posts them here with their products.
    assert {"name": "add_to_cart", "on": "click", "selector": ".add"} in answer["triggers"]
    assert {"name": "purchase", "on": "custom"} in answer["triggers"]
    assert [(r[1], r[2], r[3], r[5]) for r in store.rows("trigger")] == [
        ("trigger", "add_to_cart", '["sku-1"]', None),
        ("trigger", "purchase", '["sku-1","sku-2"]', 99.5),
        ("trigger", "newsletter", None, None),
    ]
    assert bought_keys(store.state(LAPTOP)) == set(keys("sku-1", "sku-2"))
    assert recent_keys(store.state(LAPTOP)) == []  # a cart is no view


def test_cart_and_purchase_events_carry_their_products_through_events(store: Store) -> None:
    store.decide(LAPTOP)
    store.events(
        LAPTOP,
        [
            {"type": "event", "name": "add_to_cart", "product": "sku-3"},
            {"type": "event", "name": "purchase", "value": 20.0, "products": ["sku-3", "sku-4"]},
        ],
    )
    assert [(r[1], r[2], r[3], r[5]) for r in store.rows("event")] == [
        ("event", "add_to_cart", '["sku-3"]', None),
        ("event", "purchase", '["sku-3","sku-4"]', 20.0),
    ]
    state = store.state(LAPTOP)
    assert state.products is not None
    assert state.products.bought == b"".join(keys("sku-3", "sku-4"))


def test_a_click_on_a_recommended_product_records_the_product_and_strategy(store: Store) -> None:
    runtime = store.client.app.state.runtime  # type: ignore[attr-defined]
    sku = Product(id="sku-9", name="Lamp", url=f"{ORIGIN}/products/sku-9")
    runtime.recommendations["store"] = Index.build([sku], popular={None: ["sku-9"]})
    decision = store.decide(LAPTOP)["decisions"][0]
    about = {"decision": decision["id"], "rule": "cards", "variant": "row"}
    store.events(
        LAPTOP,
        [
            {"type": "impression", **about, "product": "sku-9"},  # not about a product
            # Not a product of the index, or not a strategy of the widget: a plain click
            # (once per decision, like any plain click).
            {"type": "click", **about, "product": "sku-0", "strategy": "bought_together"},
            {"type": "click", **about, "product": "sku-9", "strategy": "recently_viewed"},
            {"type": "click", **about, "product": "sku-9", "strategy": "bought_together"},
        ],
    )
    assert store.rows("impression")[0][3:5] == (None, None)
    assert store.rows("click") == [
        (LAPTOP, "click", None, None, None, None),
        (LAPTOP, "click", None, '["sku-9"]', '{"strategy":"bought_together"}', None),
    ]
    bad = {"type": "click", **about, "product": "<script>"}
    assert "$.events[0].product" in store.events(LAPTOP, [bad], status=400)["error"]


def test_the_person_s_verified_purchases_reach_their_browsers_and_nobody_else(
    store: Store,
) -> None:
    store.decide(LAPTOP, token=store.token("carol"))
    store.decide(PHONE, token=store.token("carol"))
    store.decide(CLAIMER, identify="carol")  # page JavaScript claims to be carol
    # The phone buys (verified), the claimer "buys" (forged, or another person's).
    store.decide(PHONE, events=[{"name": "purchase", "products": ["sku-phone"]}])
    store.decide(CLAIMER, events=[{"name": "purchase", "products": ["sku-forged"]}])
    # The site's own records: a store purchase (a purchase needs no declared trigger).
    store.clock.now += 1000
    stored = store.admin(
        "POST",
        "/v1/contacts/carol/events",
        json=[{"name": "purchase", "products": ["sku-shop", "sku-shop"], "id": "order-7"}],
    )
    assert stored == {"stored": 1, "duplicate": 0}
    store.clock.now += 15 * MINUTE_MS + 1000
    store.decide(LAPTOP)  # refreshed
    laptop = store.state(LAPTOP)
    assert laptop.products is not None
    assert laptop.products.server == b"".join(keys("sku-shop", "sku-phone"))  # newest first
    assert bought_keys(laptop) == set(keys("sku-shop", "sku-phone"))
    assert laptop.products.bought == b""  # this browser bought nothing itself
    # The claimer filters what it "bought" itself, and never learns what carol bought.
    store.decide(CLAIMER)
    claimer = store.state(CLAIMER)
    assert bought_keys(claimer) == set(keys("sku-forged"))
    assert claimer.products is not None and claimer.products.server == b""
    store.decide(STRANGER)
    assert bought_keys(store.state(STRANGER)) == set()


def test_a_claim_after_a_verified_identification_drops_the_person_s_purchases(
    store: Store,
) -> None:
    store.admin(
        "POST", "/v1/contacts/carol/events", json=[{"name": "purchase", "products": ["sku-1"]}]
    )
    store.decide(LAPTOP, token=store.token("carol"))  # identification reads them at once
    assert bought_keys(store.state(LAPTOP)) == set(keys("sku-1"))
    store.decide(LAPTOP, identify="dave")
    state = store.state(LAPTOP)
    assert state.products is None  # nothing of carol's is left, and nothing else was there
    assert bought_keys(state) == set()


def test_contact_events_refuse_bad_products_naming_them(store: Store) -> None:
    headers = {"authorization": f"Bearer {store.key}"}
    for products, where in ((["a b"], "events[0].products[0]"), ([], "events[0].products")):
        answer = store.client.post(
            "/v1/contacts/carol/events",
            params={"site": "store"},
            headers=headers,
            json=[{"name": "purchase", "products": products}],
        )
        assert answer.status_code == 400 and where in answer.json()["error"], answer.text


def test_a_refresh_replaces_the_person_s_purchases_and_a_lost_link_drops_them() -> None:
    from sitecue.refresh import apply
    from sitecue.store import Refreshed

    shop = catalog_site()
    state = VisitorState(visitor="v", contact="carol", verified=True)
    bought(state, ["mine"])
    apply(shop, state, Refreshed({}, [], {}, {}, ["a", "b"]), 1_790_000_000_000)
    assert bought_keys(state) == set(keys("mine", "a", "b"))
    apply(shop, state, Refreshed({}, [], {}, {}, ["b"]), 1_790_000_000_000)  # a refund
    assert bought_keys(state) == set(keys("mine", "b"))
    apply(shop, state, None, 1_790_000_000_000)  # erased, or linked to someone else
    assert state.products is not None and state.products.server == b""
    assert bought_keys(state) == set(keys("mine"))  # this browser's own purchase stays
    plain = VisitorState(visitor="v", contact="carol", verified=True)
    apply(site(), plain, Refreshed({}, [], {}, {}, ["a"]), 1_790_000_000_000)
    assert plain.products is None  # no catalog: nothing kept
