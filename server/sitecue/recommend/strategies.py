"""Which products a widget recommends to one visitor: ``recommend`` fills the row from each
of the widget's strategies in turn, from a site's Index (sitecue.recommend.index) and what
the visitor's state says (recent views, purchases), with the filters every row obeys: in
stock (unless the widget says otherwise), never the product on the page, never one this
person bought (in this browser, or anywhere as their verified history says), at most
``per_category`` of one category, and each product once.

Pure and quick (microseconds: a few dictionary reads per candidate), so decide can call it
on every page view; nothing here reads the store.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import NamedTuple

from ..config import Recommend, Strategy
from ..store import Product
from .index import Index

__all__ = ["SEEDS", "Pick", "recommend"]

SEEDS = 4  # off a product page, the recent views whose neighbours (categories) are drawn on


class Pick(NamedTuple):
    """A recommended product and the strategy that found it (what its card reports when
    clicked, ``data-sc-strategy``)."""

    product: Product
    strategy: Strategy


def recommend(
    index: Index,
    spec: Recommend,
    current: str | None,
    viewed: Sequence[bytes],
    bought: Collection[bytes],
) -> list[Pick]:
    """Up to ``spec.limit`` products for a visitor on the page of product ``current`` (None:
    not a product page) who viewed ``viewed`` (keys, newest first) and bought ``bought``
    (keys: this browser's and their verified history's)."""
    picks: list[Pick] = []
    taken: set[str] = set()
    per_category: dict[str | None, int] = {}
    cap = spec.per_category
    recent = index.ids(viewed)
    for strategy in spec.strategies:
        for product_id in _candidates(index, strategy, current, recent):
            product = index.products.get(product_id)
            if product is None or product_id in taken or product_id == current:
                continue
            if (spec.in_stock and not product.in_stock) or index.keys[product_id] in bought:
                continue
            if cap is not None and per_category.get(product.category, 0) >= cap:
                continue
            taken.add(product_id)
            per_category[product.category] = per_category.get(product.category, 0) + 1
            picks.append(Pick(product, strategy))
            if len(picks) >= spec.limit:
                return picks
    return picks


def _candidates(
    index: Index, strategy: Strategy, current: str | None, recent: list[str]
) -> Iterable[str]:
    """The strategy's products, best first (before the filters)."""
    if strategy == "recently_viewed":
        return recent
    if strategy == "popular":
        return index.popular
    product = index.products.get(current) if current is not None else None
    seeds = [product.id] if product is not None else recent[:SEEDS]
    if strategy == "popular_in_category":
        categories = (index.products[s].category for s in seeds)
        return _interleave(
            index.popular_in.get(c, ()) for c in dict.fromkeys(categories) if c is not None
        )
    lists = index.neighbours.get(strategy, {})
    return _interleave(lists.get(s, ()) for s in seeds)


def _interleave(lists: Iterable[Sequence[str]]) -> Iterator[str]:
    """The lists' first items, then their second items, and so on."""
    lists = [items for items in lists if items]
    for rank in range(max(map(len, lists), default=0)):
        for items in lists:
            if rank < len(items):
                yield items[rank]
