"""Product rollups, on both engines: recommendation clicks per product and strategy (once per
decision and product; the variant's own click once per decision), purchases credited to the
same visitor's latest click on the product within 7 days (once per click, at the catalogue
price or a share of the order), forged details ignored without losing the batch, erasure
and retention."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, get_args

import pytest

from sitecue.config import Strategy
from sitecue.decide import Verdict
from sitecue.ids import record_id
from sitecue.retention import Retention
from sitecue.store import (
    DAY_MS,
    DecisionRecord,
    EventRecord,
    ProductCounts,
    Store,
    StrategyCounts,
    StrategyDay,
    open_store,
)
from sitecue.store.product_rollups import ATTRIBUTION_MS, STRATEGIES, product_click
from sites import site

T0 = 1_790_000_000_000 - 1_790_000_000_000 % DAY_MS + 10 * 3_600_000  # 10:00 UTC
DAY0 = T0 // DAY_MS
PURCHASE = "purchase"


def run(url: str, body: Callable[[Store], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        store = await open_store(url)
        store.purchases = {"shop": PURCHASE}  # as Runtime.swap sets it from the catalog
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


def decision(n: int, visitor: str, variant: str, at: int) -> DecisionRecord:
    return DecisionRecord(
        f"{record_id(at)}{n:02d}", "shop", visitor, at, "u",
        [Verdict("recs", True, variant=variant)], key=f"call-{n}",
    )  # fmt: skip


def click(
    d: DecisionRecord, product: str | None, strategy: str | None, key: str, at: int | None = None
) -> EventRecord:
    variant = d.verdicts[0].variant
    detail = json.dumps({"strategy": strategy}) if strategy is not None else None
    products = [product] if product is not None else None
    return EventRecord(
        "shop", d.visitor, "click", at if at is not None else d.at + 1000, rule="recs",
        variant=variant, decision=d.id, key=key, products=products, detail=detail,
    )  # fmt: skip


def purchase(
    visitor: str, products: list[str], value: float | None, at: int, key: str
) -> EventRecord:
    return EventRecord(
        "shop", visitor, "event", at, name=PURCHASE, value=value, key=key, products=products
    )


async def put_prices(store: Store, prices: dict[str, float | None]) -> None:
    """Products in the catalogue table, as the catalogue's API puts them."""
    rows = [("shop", p, p, f"https://shop.example/{p}", price, 1) for p, price in prices.items()]
    sql = "INSERT INTO products (site, id, name, url, price, updated) VALUES (?, ?, ?, ?, ?, ?)"
    writes = getattr(store, "_writes", None)
    if writes is not None:  # SQLite
        writes.executemany(sql, rows)
        return
    async with store._pool.acquire() as db:  # type: ignore[attr-defined]
        await db.executemany(sql.replace("?", "$%d") % (1, 2, 3, 4, 5, 6), rows)


async def counts(store: Store) -> tuple[list[StrategyCounts], list[ProductCounts], int]:
    """The strategies, the products, and the variant clicks of the rule ``recs``."""
    variant_clicks = sum(v.clicks for v in await store.results("shop", "recs"))
    return (
        await store.strategy_results("shop", "recs"),
        await store.product_report("shop", "recs", DAY0 - 10, DAY0 + 30),
        variant_clicks,
    )


def test_the_strategies_are_the_configs() -> None:
    assert frozenset(get_args(Strategy)) == STRATEGIES


@pytest.mark.parametrize("together", [False, True], ids=["apart", "one-group"])
def test_a_product_click_counts_once_per_decision_and_product(
    store_url: str, together: bool
) -> None:
    d1 = decision(1, "v1", "a", T0)
    d2 = decision(2, "v2", "a", T0)
    groups = [
        [click(d1, "p1", "popular", "e1")],
        [click(d1, "p2", "popular", "e2")],  # another card of the same widget
        [click(d1, "p1", "popular", "e3")],  # replayed with a new id
        [click(d1, "p1", "popular", "e1")],  # retried
        [click(d1, None, None, "e4")],  # a plain click on the same decision
        [click(d2, None, None, "e5")],  # a plain click first, then a product click
        [click(d2, "p1", "bought_together", "e6")],
    ]

    async def body(store: Store) -> Any:
        await store.write([], [d1, d2])
        if together:
            await store.write([e for g in groups for e in g], [])
        else:
            for g in groups:
                await store.write(g, [])
        return await counts(store)

    strategies, products, variant_clicks = run(store_url, body)
    assert strategies == [
        StrategyCounts("a", "bought_together", 1, 0, 0.0),
        StrategyCounts("a", "popular", 2, 0, 0.0),
    ]
    assert products == [
        ProductCounts("p1", "a", "bought_together", 1, 0, 0.0),
        ProductCounts("p1", "a", "popular", 1, 0, 0.0),
        ProductCounts("p2", "a", "popular", 1, 0, 0.0),
    ]
    assert variant_clicks == 2  # once per decision, however many cards


def test_a_forged_strategy_or_detail_is_an_ordinary_click_and_the_batch_is_kept(
    store_url: str,
) -> None:
    d1 = decision(1, "v1", "a", T0)
    d2 = decision(2, "v2", "a", T0)
    forged = [
        click(d1, "p1", "ours_not", "e1"),
        EventRecord(
            "shop",
            "v1",
            "click",
            T0 + 1,
            rule="recs",
            variant="a",
            decision=d1.id,
            key="e2",
            products=["p2"],
            detail="{not json",
        ),
        EventRecord(
            "shop",
            "v1",
            "click",
            T0 + 2,
            rule="recs",
            variant="a",
            decision=d1.id,
            key="e3",
            products=["p1", "p2"],
            detail='{"strategy": "popular"}',
        ),
        EventRecord(
            "shop",
            "v1",
            "click",
            T0 + 3,
            rule="recs",
            variant="a",
            decision=d1.id,
            key="e4",
            products=["p 1"],
            detail='{"strategy": "popular"}',
        ),
        EventRecord(
            "shop",
            "v1",
            "click",
            T0 + 4,
            rule="recs",
            variant="a",
            decision=d1.id,
            key="e5",
            products=["p1"],
            detail='["popular"]',
        ),
        click(d2, "p3", "popular", "e6"),  # a genuine one in the same batch
        EventRecord("shop", "v2", "event", T0 + 5, name="newsletter", key="e7"),
    ]
    assert [product_click(e) for e in forged] == [None] * 5 + [("p3", "popular"), None]

    async def body(store: Store) -> Any:
        await store.write([], [d1, d2])
        await store.write(forged, [])
        return await counts(store), await store.events("shop", ["v1", "v2"])

    (strategies, products, variant_clicks), stored = run(store_url, body)
    assert strategies == [StrategyCounts("a", "popular", 1, 0, 0.0)]
    assert products == [ProductCounts("p3", "a", "popular", 1, 0, 0.0)]
    assert variant_clicks == 2  # d1's first (forged) click still counts as its click
    # The batch is kept: the first forged click (as an ordinary click: the others repeat
    # its "click <d1>"), the genuine click and the page event.
    assert sorted((e.visitor, e.type, e.decision or "") for e in stored) == [
        ("v1", "click", d1.id), ("v2", "click", d2.id), ("v2", "event", ""),
    ]  # fmt: skip


def test_a_purchase_credits_the_visitor_s_latest_click_within_7_days(store_url: str) -> None:
    d1 = decision(1, "v1", "a", T0)  # day 0: bought_together recommends p1
    d2 = decision(2, "v1", "b", T0 + DAY_MS)  # day 1: popular recommends p1 and p2
    d3 = decision(3, "v2", "b", T0)  # another visitor clicks p2 and p3
    d4 = decision(4, "v3", "a", T0)  # a click long before its purchase
    clicks = [
        click(d1, "p1", "bought_together", "c1"),
        click(d2, "p1", "popular", "c2"),
        click(d2, "p2", "popular", "c3"),
        click(d3, "p2", "popular", "c4"),
        click(d3, "p3", "viewed_together", "c5"),
        click(d4, "p1", "popular", "c6"),
    ]
    later = T0 + 2 * DAY_MS
    purchases = [
        # v1 buys p1 (catalogue price 30), p2 (no price) and p9 (never clicked): 120 in all
        purchase("v1", ["p1", "p2", "p9", "p1"], 120.0, later, "b1"),
        # replayed with a new id: the clicks converted already
        purchase("v1", ["p1", "p2"], 120.0, later + 1000, "b2"),
        # v2's purchase of p3 under another name (not the site's purchase event)
        EventRecord(
            "shop", "v2", "event", later, name="checkout", value=10.0, key="b3", products=["p3"]
        ),
        # v3 buys p1 more than 7 days after the click
        purchase("v3", ["p1"], 50.0, T0 + 1000 + ATTRIBUTION_MS + 1, "b4"),
        # v2 buys p2 without a value and without a price: a conversion, no revenue
        purchase("v2", ["p2"], None, later, "b5"),
    ]

    async def body(store: Store) -> Any:
        await put_prices(store, {"p1": 30.0, "p2": None})
        await store.write([], [d1, d2, d3, d4])
        await store.write(clicks, [])
        for p in purchases:
            await store.write([p], [])
        return await counts(store), await store.strategy_report("shop", "recs", DAY0, DAY0 + 10)

    (strategies, products, _), days = run(store_url, body)
    assert products == [
        ProductCounts("p1", "a", "bought_together", 1, 0, 0.0),  # not the latest click
        ProductCounts("p1", "a", "popular", 1, 0, 0.0),  # v3's: too long before
        ProductCounts("p1", "b", "popular", 1, 1, 30.0),  # the catalogue's price
        ProductCounts("p2", "b", "popular", 2, 2, 40.0),  # 120 / 3 products; v2's: 0
        ProductCounts("p3", "b", "viewed_together", 1, 0, 0.0),
    ]
    assert strategies == [
        StrategyCounts("a", "bought_together", 1, 0, 0.0),
        StrategyCounts("a", "popular", 1, 0, 0.0),
        StrategyCounts("b", "popular", 3, 3, 70.0),
        StrategyCounts("b", "viewed_together", 1, 0, 0.0),
    ]
    # Conversions count on the clicks' days.
    assert days == [
        StrategyDay(DAY0, "a", "bought_together", 1, 0, 0.0),
        StrategyDay(DAY0, "a", "popular", 1, 0, 0.0),
        StrategyDay(DAY0, "b", "popular", 1, 1, 0.0),
        StrategyDay(DAY0, "b", "viewed_together", 1, 0, 0.0),
        StrategyDay(DAY0 + 1, "b", "popular", 2, 2, 70.0),
    ]


def test_a_purchase_never_credits_another_visitor_s_click(store_url: str) -> None:
    d1 = decision(1, "v1", "a", T0)

    async def body(store: Store) -> Any:
        await store.write([], [d1])
        await store.write([click(d1, "p1", "popular", "c1")], [])
        await store.write([purchase("v2", ["p1"], 10.0, T0 + 5000, "b1")], [])
        await store.write([purchase("-", ["p1"], 10.0, T0 + 5000, "b2")], [])
        return await counts(store)

    strategies, _, _ = run(store_url, body)
    assert strategies == [StrategyCounts("a", "popular", 1, 0, 0.0)]


def test_a_click_and_its_purchase_in_one_group_count_and_a_new_click_converts_anew(
    store_url: str,
) -> None:
    d1 = decision(1, "v1", "a", T0)
    d2 = decision(2, "v1", "a", T0 + 60_000)

    async def body(store: Store) -> Any:
        await store.write(
            [click(d1, "p1", "popular", "c1"), purchase("v1", ["p1"], 8.0, T0 + 5000, "b1")],
            [d1],
        )
        await store.write([click(d2, "p1", "popular", "c2")], [d2])
        await store.write([purchase("v1", ["p1"], 8.0, T0 + 90_000, "b2")], [])
        return await counts(store)

    strategies, _, _ = run(store_url, body)
    assert strategies == [StrategyCounts("a", "popular", 2, 2, 16.0)]


def test_erasure_leaves_no_click_under_the_visitor_and_keeps_the_counts(store_url: str) -> None:
    d1 = decision(1, "v1", "a", T0)

    async def body(store: Store) -> Any:
        await store.write([], [d1])
        await store.write([click(d1, "p1", "popular", "c1")], [])
        await store.link("shop", "v1", "person", T0, verified=True)
        assert await store.erase_contact("shop", "person")
        # The browser's history is gone: its purchase (were it to come) credits nothing.
        await store.write([purchase("v1", ["p1"], 8.0, T0 + 5000, "b1")], [])
        return await counts(store)

    strategies, products, _ = run(store_url, body)
    assert strategies == [StrategyCounts("a", "popular", 1, 0, 0.0)]
    assert products == [ProductCounts("p1", "a", "popular", 1, 0, 0.0)]


def test_retention_keeps_product_rollups_and_prunes_old_clicks(store_url: str) -> None:
    shop = site(
        {"site": "shop", "origins": ["https://shop.example"], "retention": {"events": "1d"}}
    )
    d1 = decision(1, "v1", "a", T0)
    now = [T0 + ATTRIBUTION_MS + DAY_MS]

    async def body(store: Store) -> Any:
        await store.write([], [d1])
        await store.write([click(d1, "p1", "popular", "c1")], [])
        retention = Retention(store, lambda: {"shop": shop}, clock=lambda: now[0], pace=0)
        done = await retention.run_once()
        # The click is past its window: pruned, so a purchase now credits nothing.
        await store.write([purchase("v1", ["p1"], 8.0, T0 + 3000, "b1")], [])
        return done, await counts(store)

    done, (strategies, products, _) = run(store_url, body)
    assert done.deleted["events"] >= 1 and done.clicks == 1
    assert strategies == [StrategyCounts("a", "popular", 1, 0, 0.0)]
    assert products == [ProductCounts("p1", "a", "popular", 1, 0, 0.0)]


def test_reports_read_a_row_per_day_and_strategy_however_many_products(store_url: str) -> None:
    ds = [decision(n, f"v{n}", "a", T0 + (n % 3) * DAY_MS) for n in range(60)]
    clicks = [
        click(d, f"p{n}-{i}", "popular" if i % 2 else "bought_together", f"c{n}-{i}")
        for n, d in enumerate(ds)
        for i in range(5)
    ]

    async def body(store: Store) -> Any:
        await store.write(clicks, ds)
        return (
            await store.strategy_report("shop", "recs", DAY0, DAY0 + 3),
            await store.product_report("shop", "recs", DAY0, DAY0 + 3),
        )

    days, products = run(store_url, body)
    assert len(products) == 300  # every product
    assert [(d.day, d.strategy, d.clicks) for d in days] == [
        (DAY0 + day, strategy, 20 * per)
        for day in range(3)
        for strategy, per in (("bought_together", 3), ("popular", 2))
    ]
