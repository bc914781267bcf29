"""The demo's made-up history: the same records on every run, something for every rule of
every demo site, written once into a fresh demo so its dashboard shows a report per rule."""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
import time
from collections import Counter, defaultdict
from datetime import date
from itertools import permutations
from pathlib import Path

import msgspec
import pytest
from starlette.testclient import TestClient

from admin_keys import ORIGIN, new_key
from sitecue.app import build_app
from sitecue.decide import Verdict
from sitecue.demo import build_demo_app
from sitecue.demo_history import DAYS, MARKER, PLANTED, history, seed_history
from sitecue.demo_shop import CATALOG, read_catalog
from sitecue.keyring import Keyring
from sitecue.rules import load_sites
from sitecue.settings import Settings
from sitecue.store import DAY_MS, DecisionQuery, DecisionRecord, EventRecord
from sites import CONFIG_DIR
from test_dashboard import OWN

UNTIL_DAY = (date(2026, 10, 31) - date(1970, 1, 1)).days  # history: 2026-10-03 to 2026-10-30


def test_the_history_is_fixed_and_every_rule_has_visitors_and_conversions() -> None:
    sites = load_sites(CONFIG_DIR, frozenset(), Keyring(["history-test-secret-000000"]))
    for site in sites.values():
        days = history(site, UNTIL_DAY)
        assert days == history(site, UNTIL_DAY)  # the same records every run
        assert len(days) == DAYS
        decisions = [d for _, batch in days for d in batch]
        events = [e for batch, _ in days for e in batch]
        assert len({d.id for d in decisions}) == len(decisions) > 50 * DAYS
        assert all((UNTIL_DAY - DAYS) * DAY_MS <= r.at < UNTIL_DAY * DAY_MS for r in decisions)
        for rule in site.rules:
            shown = {
                v.variant for d in decisions for v in d.verdicts if v.rule == rule.id and v.matched
            }
            assert shown == {v.id for v in rule.variants}, rule.id  # the control too
            exposed = {
                d.visitor for d in decisions for v in d.verdicts if v.rule == rule.id and v.matched
            }
            goal = rule.rule.goal
            assert any(e.visitor in exposed and e.name == goal for e in events), rule.id
        assert any(e.type == "click" for e in events) and any(e.type == "dismiss" for e in events)
    purchases = [e for e in history(sites["shop"], UNTIL_DAY)[0][0] if e.name == "purchase"]
    assert purchases and all(e.value is not None and e.value > 0 for e in purchases)


def test_a_fresh_demo_shows_a_report_with_data_for_every_rule_and_is_seeded_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"SITECUE_DATA_DIR": str(tmp_path / "data"), "SITECUE_CONFIG_DIR": str(CONFIG_DIR)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.load(env=env, demo=True)
    key = new_key(capsys, "news", "shop")
    with TestClient(build_demo_app(settings), base_url=ORIGIN) as client:
        answer = client.post("/sc/dashboard/login", data={"key": key}, headers=OWN)
        page = answer.text
    for site in ("news", "shop"):
        rules = load_sites(CONFIG_DIR, frozenset(), Keyring(settings.secrets))[site].rules
        for rule in rules:
            start = page.index(f'aria-labelledby="report-{site}-{rule.id}-heading"')
            panel = page[start : page.index('<p class="csv">', start)]
            assert '<rect class="bar"' in panel and "No data in this period" not in panel
            assert '<path class="rate"' in panel, rule.id
    # Started again on the same data: nothing more is written.
    with TestClient(build_demo_app(settings), base_url=ORIGIN) as client:
        sitecue = client.app.routes[0].app  # type: ignore[attr-defined]
        store, sites = sitecue.state.runtime.store, sitecue.state.runtime.sites
        now = int(time.time() * 1000)
        assert client.portal.call(seed_history, store, sites, now) == []  # type: ignore[union-attr]


def test_an_operators_config_run_as_a_demo_gets_no_made_up_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the bundled config (it holds the marker file) asks for history: a copy of it
    without the marker stands for an operator's own config directory."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config, ignore=shutil.ignore_patterns(MARKER))
    env = {"SITECUE_DATA_DIR": str(tmp_path / "data"), "SITECUE_CONFIG_DIR": str(config)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.load(env=env, demo=True)
    with TestClient(build_demo_app(settings), base_url=ORIGIN) as client:
        sitecue = client.app.routes[0].app  # type: ignore[attr-defined]
        store = sitecue.state.runtime.store
        for site in ("news", "shop"):
            query = DecisionQuery(site=site, limit=1)
            assert client.portal.call(store.decisions, query) == []  # type: ignore[union-attr]


def test_a_store_with_traffic_of_any_site_is_not_seeded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retention emptied the shop's decisions (the news site still has one): the shop gets
    no second history; nor does a store whose decisions all expired but rollups remain."""
    env = {"SITECUE_DATA_DIR": str(tmp_path / "data"), "SITECUE_CONFIG_DIR": str(CONFIG_DIR)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.load(env=env, demo=True)
    app = build_app(settings)
    now = UNTIL_DAY * DAY_MS
    with TestClient(app, base_url=ORIGIN) as client:
        store, sites = app.state.runtime.store, app.state.runtime.sites
        kept = DecisionRecord("kept-decision", "news", "reader", now - DAY_MS, "https://n/", [])
        client.portal.call(store.write, [], [kept])  # type: ignore[union-attr]
        assert client.portal.call(seed_history, store, sites, now) == []  # type: ignore[union-attr]
        shop = DecisionQuery(site="shop", limit=1)
        assert client.portal.call(store.decisions, shop) == []  # type: ignore[union-attr]
        only_rollups = {"shop": sites["shop"]}  # no decision of the shop, but its rollups
        decision = f"{now - DAY_MS:011x}-0000000c-0"  # as ids.record_id makes them
        about = {"site": "shop", "visitor": "buyer", "decision": decision}
        rule, variant = sites["shop"].rules[0].id, sites["shop"].rules[0].variants[0].id
        shown = DecisionRecord(
            decision,
            "shop",
            "buyer",
            now - DAY_MS,
            "https://s/",
            [Verdict(rule, True, variant=variant)],
        )
        seen = EventRecord(type="impression", at=now - DAY_MS, rule=rule, variant=variant, **about)
        client.portal.call(store.write, [seen], [shown])  # type: ignore[union-attr]
        client.portal.call(store.expire, "decisions", "shop", now, 1000)  # type: ignore[union-attr]
        assert client.portal.call(store.decisions, shop) == []  # type: ignore[union-attr]
        assert client.portal.call(seed_history, store, only_rollups, now) == []  # type: ignore[union-attr]


def test_a_site_listing_no_origins_of_its_own_has_a_history(tmp_path: Path) -> None:
    """A site may list no origins when the demo adds its own (SITECUE_ALLOW_ORIGINS)."""
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    news = config / "sites" / "news.json"
    news.write_text(json.dumps({**json.loads(news.read_text()), "origins": []}))
    demo = frozenset({"http://localhost:8000"})
    sites = load_sites(config, demo, Keyring(["history-test-secret-000000"]))
    days = history(sites["news"], UNTIL_DAY, 1)
    assert {d.url for _, batch in days for d in batch} == {"http://localhost:8000/"}


SHOP_PRODUCTS = [p.product() for p in read_catalog(CONFIG_DIR / CATALOG)]


def _shop_history() -> list[EventRecord]:
    sites = load_sites(CONFIG_DIR, frozenset(), Keyring(["history-test-secret-000000"]))
    return [e for b, _ in history(sites["shop"], UNTIL_DAY, products=SHOP_PRODUCTS) for e in b]


def test_the_shops_buyers_buy_the_planted_partners_together_and_little_else_repeats() -> None:
    """Bought together as the design defines it (each buyer counted once per pair, score =
    pair / sqrt(count(a) * count(b)), at least min_support buyers): each planted product's
    best partner is the one planted, by far; no other pair comes near."""
    events = _shop_history()
    baskets: dict[str, set[str]] = defaultdict(set)
    for e in events:
        if e.name == "purchase":
            assert e.products, "every purchase of the shop carries its products"
            baskets[e.visitor] |= set(e.products)
    count: Counter[str] = Counter(p for basket in baskets.values() for p in basket)
    pairs: Counter[tuple[str, str]] = Counter(
        pair for basket in baskets.values() for pair in permutations(sorted(basket), 2)
    )

    def score(a: str, b: str) -> float:
        return pairs[a, b] / math.sqrt(count[a] * count[b])

    planted = {(a, b) for a, b in PLANTED.items()} | {(b, a) for a, b in PLANTED.items()}
    for a, b in planted:
        assert pairs[a, b] >= 20, (a, b)  # far above min_support
        others = [score(a, x) for x in count if x not in (a, b) and pairs[a, x] >= 2]
        assert score(a, b) > 0.7 and max(others, default=0.0) < 0.3, (a, b)
    noise = [score(a, b) for (a, b), n in pairs.items() if n >= 2 and (a, b) not in planted]
    assert max(noise) < 0.35


def test_the_shops_purchases_are_valued_at_their_products_prices_after_views_and_carts() -> None:
    events = _shop_history()
    prices = {p.id: p.price for p in SHOP_PRODUCTS}
    stocked = {p.id for p in SHOP_PRODUCTS if p.in_stock}
    by_visitor: dict[str, list[EventRecord]] = defaultdict(list)
    for e in events:
        by_visitor[e.visitor].append(e)
    purchases = [e for e in events if e.name == "purchase"]
    assert len(purchases) > 200
    for purchase in purchases:
        assert purchase.products and set(purchase.products) <= stocked
        assert purchase.value == round(sum(prices[p] or 0.0 for p in purchase.products), 2)
        mine = by_visitor[purchase.visitor]
        carts = [e for e in mine if e.name == "add_to_cart"]
        assert [e.type for e in carts] == ["trigger"] * len(purchase.products)
        assert [p for e in carts for p in e.products or []] == purchase.products
        viewed = {p for e in mine if e.type == "product_view" for p in e.products or []}
        assert set(purchase.products) <= viewed
        assert max(e.at for e in mine if e.type == "product_view") < min(e.at for e in carts)
        assert max(e.at for e in carts) < purchase.at
    views = [e for e in events if e.type == "product_view"]
    assert len(views) > 10 * len(purchases)
    assert all(e.products and len(e.products) == 1 and e.detail is None for e in views)


def test_the_shoppers_leave_the_rules_traffic_as_it_was() -> None:
    """The rules' decisions and feedback are the same with the catalogue's shoppers or
    without them: only the purchases gain products (and their baskets' value)."""
    sites = load_sites(CONFIG_DIR, frozenset(), Keyring(["history-test-secret-000000"]))
    plain = history(sites["shop"], UNTIL_DAY, 3)
    shopping = history(sites["shop"], UNTIL_DAY, 3, products=SHOP_PRODUCTS)
    assert [d for _, d in plain] == [d for _, d in shopping]
    for (before, _), (after, _) in zip(plain, shopping, strict=True):
        kept = [e for e in after if e.type != "product_view" and e.name != "add_to_cart"]
        same = [msgspec.structs.replace(e, products=None, value=None) for e in kept]
        assert same == [msgspec.structs.replace(e, value=None) for e in before]
    news = history(sites["news"], UNTIL_DAY, 3, products=SHOP_PRODUCTS)  # no catalog
    assert news == history(sites["news"], UNTIL_DAY, 3)


def test_a_fresh_demo_stores_the_shoppers_products_with_their_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"SITECUE_DATA_DIR": str(tmp_path / "data"), "SITECUE_CONFIG_DIR": str(CONFIG_DIR)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with TestClient(build_demo_app(Settings.load(env=env, demo=True)), base_url=ORIGIN):
        pass
    db = sqlite3.connect(tmp_path / "data" / "sitecue.db")
    rows = db.execute(
        "SELECT products FROM events WHERE site = 'shop' AND name = 'purchase'"
    ).fetchall()
    assert rows and all(json.loads(products) for (products,) in rows)
    (views,) = db.execute("SELECT count(*) FROM events WHERE type = 'product_view'").fetchone()
    assert views > 10 * len(rows)


def test_a_demo_imports_the_shops_catalogue_and_recommends_from_its_first_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sitecue demo`` stores the catalogue at every start (again: replaced, not doubled),
    runs the recommendations' job once over the seeded shoppers and loads its index before
    it serves: the stove's first bought-together neighbour is its planted partner."""
    env = {"SITECUE_DATA_DIR": str(tmp_path / "data"), "SITECUE_CONFIG_DIR": str(CONFIG_DIR)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.load(env=env, demo=True)
    for _ in range(2):
        with TestClient(build_demo_app(settings), base_url=ORIGIN) as client:
            runtime = client.app.routes[0].app.state.runtime  # type: ignore[attr-defined]
            stored = client.portal.call(runtime.store.all_products, "shop")  # type: ignore[union-attr]
            index = runtime.recommendations["shop"]
    assert sorted(p.id for p in stored) == sorted(p.id for p in SHOP_PRODUCTS)
    assert {p.id: p.extra for p in stored}["stove-compact-gas"] == {"brand": "Emberlite"}
    together = index.neighbours["bought_together"]
    for product, partner in PLANTED.items():
        assert together[product][0] == partner and together[partner][0] == product
