"""Recommendation attribution through the real app: an experiment that pits two strategies
(two variants whose widgets recommend differently, and a control) reports them side by side
in results, reports (JSON and CSV), the per-product listing and the dashboard; the runtime
gives the writer each site's purchase event; bad parameters are 4xx naming them."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from admin_keys import ORIGIN
from sitecue.api.keys import mint_key
from sitecue.app import build_app
from sitecue.attribution import StrategyResult, strategy_results
from sitecue.decide import Verdict
from sitecue.ids import record_id
from sitecue.runtime import Runtime, purchases_of
from sitecue.settings import Settings
from sitecue.store import DAY_MS, DecisionRecord, EventRecord, StrategyCounts
from sites import site
from test_dashboard import sign_in

T0 = 1_772_445_600_000  # 2026-03-02 10:00 UTC
RECOMMEND = {
    "recs-bought": ["bought_together", "popular"],
    "recs-popular": ["popular_in_category"],
}


def shop_config(path: Path) -> None:
    """The example shop with a catalogue (purchase event ``order``) and an experiment
    ``recs``: variant ``bought`` recommends bought-together then popular, ``category``
    popular-in-category, and a control."""
    file = path / "sites" / "shop.json"
    shop = json.loads(file.read_text())
    shop["catalog"] = {"purchase": "order", "cart": "add_to_cart"}
    for name, strategies in RECOMMEND.items():
        shop["widgets"][name] = {
            "template": "widgets/recommendations.html",
            "data": {"title": "You may like"},
            "recommend": {"strategies": strategies},
        }
    shop["rules"].append(
        {
            "id": "recs",
            "placement": {"type": "inline", "selector": "#recs"},
            "variants": [
                {"id": "bought", "weight": 40, "widget": "recs-bought"},
                {"id": "category", "weight": 40, "widget": "recs-popular"},
                {"id": "control", "weight": 20, "widget": None},
            ],
            "priority": 1,
        }
    )
    file.write_text(json.dumps(shop))


class Shop:
    def __init__(self, client: TestClient, key: str) -> None:
        self.client, self.key = client, key
        self.runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]

    def write(self, events: list[EventRecord], decisions: list[DecisionRecord]) -> None:
        self.client.portal.call(self.runtime.store.write, events, decisions)  # type: ignore[union-attr]

    def get(self, path: str, **params: str) -> Any:
        return self.client.get(path, params=params, headers={"authorization": f"Bearer {self.key}"})


@pytest.fixture
def shop(env: dict[str, str], store_url: str) -> Iterator[Shop]:
    """The app with the shop's experiment, on each engine."""
    shop_config(Path(env["SITECUE_CONFIG_DIR"]))
    settings = Settings.load(env={**env, "SITECUE_DB": store_url})
    with TestClient(build_app(settings), base_url=ORIGIN) as client:
        text, record = mint_key(["shop"])
        client.portal.call(client.app.state.runtime.store.add_api_key, record)  # type: ignore[attr-defined]
        yield Shop(client, text)


def _decision(n: int, visitor: str, variant: str, at: int) -> DecisionRecord:
    return DecisionRecord(
        f"{record_id(at)}{n:03d}", "shop", visitor, at, "https://shop.example/",
        [Verdict("recs", True, variant=variant)], key=f"call-{n}",
    )  # fmt: skip


def _click(d: DecisionRecord, product: str, strategy: str, key: str) -> EventRecord:
    return EventRecord(
        "shop", d.visitor, "click", d.at + 1000, rule="recs", variant=d.verdicts[0].variant,
        decision=d.id, key=key, products=[product], detail=json.dumps({"strategy": strategy}),
    )  # fmt: skip


def traffic(shop: Shop) -> None:
    """Monday: b1 and b2 see ``bought``; b1 clicks p1 (bought together) and p2 (popular),
    b2 clicks p1 (bought together); c1 and c2 see ``category`` and click p3. Tuesday: b1
    buys p1 and p9 (order 100, no prices in the catalogue: 50 each), c1 buys p3 (40), and
    a visitor who never clicked buys p1."""
    ds = [
        _decision(1, "b1", "bought", T0),
        _decision(2, "b2", "bought", T0),
        _decision(3, "c1", "category", T0),
        _decision(4, "c2", "category", T0),
        _decision(5, "x1", "control", T0),
    ]
    shop.write([], ds)
    shop.write(
        [
            _click(ds[0], "p1", "bought_together", "k1"),
            _click(ds[0], "p2", "popular", "k2"),
            _click(ds[1], "p1", "bought_together", "k3"),
            _click(ds[2], "p3", "popular_in_category", "k4"),
            _click(ds[3], "p3", "popular_in_category", "k5"),
        ],
        [],
    )
    later = T0 + DAY_MS
    shop.write(
        [
            EventRecord("shop", "b1", "event", later, name="order", value=100.0, key="o1",
                        products=["p1", "p9"]),
            EventRecord("shop", "c1", "trigger", later, name="order", value=40.0, key="o2",
                        products=["p3"]),
            EventRecord("shop", "x1", "event", later, name="order", value=10.0, key="o3",
                        products=["p1"]),
        ],
        [],
    )  # fmt: skip


def test_the_runtime_gives_the_store_each_site_s_purchase_event(shop: Shop) -> None:
    assert shop.runtime.store.purchases == {"shop": "order"}
    assert purchases_of(shop.runtime.sites) == {"shop": "order"}
    shop.runtime.store.purchases = {}
    assert shop.client.portal.call(shop.runtime.reload) == []  # type: ignore[union-attr]
    assert shop.runtime.store.purchases == {"shop": "order"}
    assert purchases_of({"news": site()}) == {}  # no catalogue, no purchase event


def test_results_put_the_two_strategies_side_by_side(shop: Shop) -> None:
    traffic(shop)
    response = shop.get("/v1/results", site="shop", rule="recs")
    assert response.status_code == 200, response.text
    rows = [
        (s["variant"], s["strategy"], s["clicks"], s["conversions"], s["revenue"])
        for s in response.json()["strategies"]
    ]
    assert rows == [
        ("bought", "bought_together", 2, 1, 50.0),
        ("bought", "popular", 1, 0, 0.0),
        ("category", "popular_in_category", 2, 1, 40.0),
    ]
    by = {v["variant"]: v for v in response.json()["variants"]}
    assert by["bought"]["visitors"] == 2  # the experiment's own numbers are unchanged


def test_the_report_breaks_clicks_down_by_strategy_in_json_and_csv(shop: Shop) -> None:
    traffic(shop)
    span = {"from": "2026-03-02", "to": "2026-03-03"}
    report = shop.get("/v1/reports", site="shop", rule="recs", **span).json()
    clicks = {r["variant"]: r["clicks"] for r in report["rows"] if r["period"] == "2026-03-02"}
    assert clicks == {"bought": 2, "category": 2, "control": 0}  # once per decision
    monday = [
        (s["variant"], s["strategy"], s["clicks"], s["conversions"], s["revenue"],
         s["conversion_rate"])
        for s in report["strategies"] if s["period"] == "2026-03-02"
    ]  # fmt: skip
    assert monday == [
        ("bought", "bought_together", 2, 1, 50.0, 0.5),
        ("bought", "popular", 1, 0, 0.0, 0.0),
        ("category", "popular_in_category", 2, 1, 40.0, 0.5),
    ]
    tuesday = [s for s in report["strategies"] if s["period"] == "2026-03-03"]
    assert [s["clicks"] for s in tuesday] == [0, 0, 0] and tuesday[0]["conversion_rate"] is None
    answer = shop.get("/v1/reports", site="shop", rule="recs", format="csv",
                      breakdown="strategy", **span)  # fmt: skip
    assert answer.status_code == 200 and "strategies.csv" in answer.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(answer.text)))
    assert lines[0] == [
        "period", "variant", "strategy", "clicks", "conversions", "revenue", "conversion_rate",
        "revenue_per_click",
    ]  # fmt: skip
    assert lines[1] == ["2026-03-02", "bought", "bought_together", "2", "1", "50.0", "0.5", "25.0"]
    assert lines[-1][:4] == ["2026-03-03", "category", "popular_in_category", "0"]
    plain = shop.get("/v1/reports", site="shop", rule="recs", format="csv", **span)
    assert plain.text.splitlines()[0].startswith("period,variant,decisions")
    bad = shop.get("/v1/reports", site="shop", rule="recs", breakdown="product")
    assert bad.status_code == 400 and bad.json()["error"].startswith("breakdown:")


def test_the_products_listing_counts_per_product(shop: Shop) -> None:
    traffic(shop)
    response = shop.get(
        "/v1/recommendations/products", site="shop", rule="recs", since="2026-03-01",
        until="2026-03-02",
    )  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["since"], body["until"]) == ("2026-03-01", "2026-03-02")
    assert [
        (p["product"], p["variant"], p["strategy"], p["clicks"], p["conversions"], p["revenue"])
        for p in body["products"]
    ] == [
        ("p1", "bought", "bought_together", 2, 1, 50.0),
        ("p2", "bought", "popular", 1, 0, 0.0),
        ("p3", "category", "popular_in_category", 2, 1, 40.0),
    ]
    # The days are the clicks' days: Tuesday alone has none.
    tuesday = shop.get("/v1/recommendations/products", site="shop", rule="recs",
                       since="2026-03-03", until="2026-03-03")  # fmt: skip
    assert tuesday.json()["products"] == []


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"site": "shop"}, 400, "rule"),
        ({"site": "shop", "rule": "nope"}, 404, "rule"),
        ({"site": "shop", "rule": "recs", "since": "yesterday"}, 400, "since"),
        ({"site": "shop", "rule": "recs", "until": "2026-13-01"}, 400, "until"),
        ({"site": "shop", "rule": "recs", "since": "2026-03-05", "until": "2026-03-01"}, 400,
         "since"),
        ({"site": "shop", "rule": "recs", "since": "2020-01-01", "until": "2026-03-01"}, 400,
         "until"),
        ({"rule": "recs"}, 400, "site"),
        ({"site": "news", "rule": "recs"}, 403, "this API key is for shop"),
    ],
)  # fmt: skip
def test_the_products_listing_refuses_bad_parameters_naming_them(
    shop: Shop, params: dict[str, str], status: int, field: str
) -> None:
    response = shop.get("/v1/recommendations/products", **params)
    assert response.status_code == status, response.text
    assert response.json()["error"].startswith(field if " " in field else f"{field}:")


def test_the_products_listing_needs_a_key(shop: Shop) -> None:
    answer = shop.client.get(
        "/v1/recommendations/products", params={"site": "shop", "rule": "recs"}
    )
    assert answer.status_code == 401


def test_the_dashboard_shows_a_strategy_table_for_rules_that_recommend(shop: Shop) -> None:
    traffic(shop)
    sign_in(shop.client, shop.key)
    page = shop.client.get("/dashboard", params={"from": "2026-03-02", "to": "2026-03-03"}).text
    # recs, and the demo shop's two rows (recently viewed, bought together); no other rule
    assert page.count('class="strategies"') == 3
    table = page.split('aria-label="Recommendations of recs by strategy"')[1].split("</table>")[0]
    assert "bought_together" in table and "popular_in_category" in table
    assert "50.00" in table and "40.00" in table and "50.00%" in table
    link = "/dashboard/report.csv?site=shop&amp;rule=recs&amp;from=2026-03-02&amp;to=2026-03-03"
    assert f"{link}&amp;breakdown=strategy" in page
    answer = shop.client.get(link.replace("&amp;", "&") + "&breakdown=strategy")
    assert answer.status_code == 200 and answer.text.startswith("period,variant,strategy,")


def test_configured_strategies_are_listed_with_zeros_and_held_ones_follow() -> None:
    shop = site(
        {
            "site": "shop",
            "origins": ["https://shop.example"],
            "catalog": {},
            "widgets": {
                "w": {
                    "template": "widgets/recommendations.html",
                    "data": {"title": "t"},
                    "recommend": {"strategies": ["viewed_together", "popular"]},
                }
            },
            "rules": [
                {
                    "id": "r",
                    "placement": {"type": "inline", "selector": "#r"},
                    "variants": [{"id": "v", "weight": 100, "widget": "w"}],
                }
            ],
        }
    )
    rows = strategy_results(
        shop,
        shop.rules[0],
        [
            StrategyCounts("gone", "popular", 1, 0, 0.0),
            StrategyCounts("v", "bought_together", 4, 1, 8.0),
        ],
    )
    assert rows == [
        StrategyResult("v", "viewed_together", 0, 0, 0.0, None, None),
        StrategyResult("v", "popular", 0, 0, 0.0, None, None),
        StrategyResult("v", "bought_together", 4, 1, 8.0, 0.25, 2.0),
        StrategyResult("gone", "popular", 1, 0, 0.0, 0.0, 0.0),
    ]
