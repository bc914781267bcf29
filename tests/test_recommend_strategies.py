"""recommend(): each strategy in turn, and the filters every row obeys."""

from __future__ import annotations

import time

from recommend_shop import products
from sitecue.catalog import product_key
from sitecue.config import Recommend
from sitecue.recommend import Index, Pick, recommend

CATALOGUE = products(30)  # p009, p019, p029 out of stock; categories c0..c4 round robin
IDS = [p.id for p in CATALOGUE]
INDEX = Index.build(
    CATALOGUE,
    {
        "viewed_together": {"p001": ["p002", "p009", "p003", "p004"], "p010": ["p011", "p012"]},
        "bought_together": {"p001": ["p006", "p011", "p016", "p021", "p007"]},
    },
    {None: IDS, "c1": ["p021", "p011", "p001", "p006"], "c0": ["p020", "p010"]},
)


def ids(picks: list[Pick]) -> list[str]:
    return [p.product.id for p in picks]


def keys(*product_ids: str) -> list[bytes]:
    return [product_key(i) for i in product_ids]


def test_strategies_fill_the_row_in_order_with_their_names() -> None:
    spec = Recommend(strategies=["viewed_together", "popular"], limit=5)
    picks = recommend(INDEX, spec, "p001", [], set())
    # p009 is out of stock; p001 is the page's own product; popular fills the rest.
    assert ids(picks) == ["p002", "p003", "p004", "p000", "p005"]
    assert [p.strategy for p in picks] == ["viewed_together"] * 3 + ["popular"] * 2


def test_never_the_page_s_product_one_bought_or_one_out_of_stock() -> None:
    spec = Recommend(strategies=["bought_together", "popular"], limit=12)
    picks = recommend(INDEX, spec, "p001", keys("p001"), set(keys("p006", "p000")))
    assert "p006" not in ids(picks) and "p000" not in ids(picks) and "p001" not in ids(picks)
    assert not {"p009", "p019", "p029"} & set(ids(picks))
    assert len(ids(picks)) == len(set(ids(picks))) == 12  # each product once
    # A widget may show products out of stock when it says so.
    everything = recommend(INDEX, spec.__class__(strategies=["popular"], limit=12, in_stock=False),
                           None, [], set())  # fmt: skip
    assert "p009" in ids(everything)


def test_at_most_per_category() -> None:
    spec = Recommend(strategies=["bought_together", "popular"], limit=6, per_category=1)
    picks = recommend(INDEX, spec, "p001", [], set())
    categories = [p.product.category for p in picks]
    assert len(set(categories)) == len(categories) == 5  # five categories: one row short
    assert ids(picks)[0] == "p006"  # c1; p011, p016, p021 are c1 too: passed over


def test_recently_viewed_newest_first_and_unknown_keys_left_out() -> None:
    spec = Recommend(strategies=["recently_viewed"], limit=3)
    viewed = [*keys("p004", "p003"), b"\x00" * 6, *keys("p002", "p001")]
    assert ids(recommend(INDEX, spec, "p003", viewed, set())) == ["p004", "p002", "p001"]


def test_off_a_product_page_the_recent_views_are_the_seeds() -> None:
    together = Recommend(strategies=["viewed_together"], limit=4)
    picks = recommend(INDEX, together, None, keys("p010", "p001"), set())
    assert ids(picks) == ["p011", "p002", "p012", "p003"]  # interleaved, newest view first
    in_category = Recommend(strategies=["popular_in_category"], limit=3)
    assert ids(recommend(INDEX, in_category, None, keys("p006"), set())) == [
        "p021", "p011", "p001",
    ]  # fmt: skip
    assert ids(recommend(INDEX, in_category, "p010", keys("p006"), set())) == ["p020"]


def test_an_empty_index_recommends_nothing() -> None:
    spec = Recommend(strategies=["viewed_together", "popular"], limit=4)
    assert recommend(Index.build([]), spec, "p001", keys("p001"), set()) == []


def test_recommending_takes_microseconds() -> None:
    spec = Recommend(
        strategies=["recently_viewed", "bought_together", "popular_in_category", "popular"],
        limit=8,
        per_category=2,
    )
    viewed, bought = keys(*IDS[:8]), set(keys(*IDS[8:12]))
    started = time.perf_counter()
    for _ in range(1000):
        recommend(INDEX, spec, "p001", viewed, bought)
    assert (time.perf_counter() - started) / 1000 < 0.005  # some µs each: far below this
