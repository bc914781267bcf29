"""What one batch of product events adds: each visitor once per product, day and pair, and
a bounded record per visitor."""

from __future__ import annotations

import msgspec

from recommend_shop import DAY, NOW, shop
from sitecue.recommend.counting import MAX_PRODUCTS, Counter
from sitecue.store.recommend import ProductEvent, Touched

CATALOG = shop().config.catalog
assert CATALOG is not None
KNOWN = {f"p{i:03d}" for i in range(200)}


def event(visitor: str, products: list[str], at: int, kind: str = "product_view") -> ProductEvent:
    name = {"event": "purchase", "trigger": "add_to_cart"}.get(kind)
    return ProductEvent(0, visitor, kind, name, at, products)


def test_a_purchase_s_lines_are_bought_together_and_unknown_ids_do_not_count() -> None:
    counter = Counter(CATALOG, KNOWN, {})
    counter.add(event("v", ["p001", "p002", "p002", "made-up", "p003"], NOW, "event"))
    counter.add(event("v", ["p001"], NOW + 1, "trigger"))  # a cart: popularity only
    counter.add(event("v", ["p004"], NOW + 2, "click"))  # not a kind the job counts
    assert dict(counter.pairs) == {
        "bought p001 p002": 1, "bought p001 p003": 1, "bought p002 p003": 1
    }  # fmt: skip
    assert dict(counter.totals) == {("bought", p): 1 for p in ("p001", "p002", "p003")}
    assert counter.days[("p001", NOW // DAY)] == [0, 1, 1]


def test_a_visitor_counts_once_a_day_in_popularity_and_once_per_pair() -> None:
    counter = Counter(CATALOG, KNOWN, {})
    for i in range(10):
        counter.add(event("v", ["p001"], NOW + i))
        counter.add(event("v", ["p002"], NOW + i))
    counter.add(event("v", ["p001"], NOW + DAY))  # the next day: once more in popularity
    assert dict(counter.pairs) == {"viewed p001 p002": 1}
    assert counter.days[("p001", NOW // DAY)] == [1, 0, 0]
    assert counter.days[("p001", NOW // DAY + 1)] == [1, 0, 0]


def test_a_full_record_makes_room_only_from_products_past_the_window() -> None:
    counter = Counter(CATALOG, KNOWN, {})
    for i in range(MAX_PRODUCTS):
        counter.add(event("v", [f"p{i:03d}"], NOW - 4 * DAY + i))
    counter.add(event("v", ["p100"], NOW - 4 * DAY + 100))  # all recent: not counted
    assert ("viewed", "p100") not in counter.totals
    counter.add(event("v", ["p101"], NOW))  # the others are days old now: they make room
    assert counter.totals[("viewed", "p101")] == 1
    ((kind, visitor, record, latest),) = counter.batch(1).visitors
    assert msgspec.msgpack.decode(record, type=Touched).products == ["p101"]
    assert (kind, visitor, latest) == ("viewed", "v", NOW)
