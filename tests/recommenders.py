"""A small, real, in-memory recommender in the shape decide takes (sitecue.personal.
Recommender), for the tests of personal widgets: each strategy picks from
fixed lists (the popular ones, and per product the ones viewed or bought with it), with the
filters every strategy applies (in stock, not bought, not the current product, once each, at
most ``per_category`` a category, at most ``limit``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sitecue.catalog import product_key
from sitecue.config import Recommend
from sitecue.store.catalog import Product


@dataclass(frozen=True)
class Pick:
    product: Product
    strategy: str


@dataclass
class ListRecommender:
    products: list[Product]
    popular: list[str] = field(default_factory=list)  # ids, the most popular first
    together: dict[str, list[str]] = field(default_factory=dict)  # id -> bought with it
    record: bool = False  # keep each call's arguments in ``calls`` (tests look at them)
    calls: list[tuple[str | None, list[bytes], set[bytes]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.by_id = {p.id: p for p in self.products}
        self.keys = {p.id: product_key(p.id) for p in self.products}
        self.by_key = {k: self.by_id[i] for i, k in self.keys.items()}

    def _candidates(self, strategy: str, current: str | None, viewed: list[bytes]) -> list[Product]:
        if strategy == "recently_viewed":
            return [self.by_key[k] for k in viewed if k in self.by_key]
        if strategy in ("bought_together", "viewed_together"):
            return [self.by_id[i] for i in self.together.get(current or "", [])]
        return [self.by_id[i] for i in self.popular]

    def __call__(
        self, spec: Recommend, current: str | None, viewed: list[bytes], bought: set[bytes], /
    ) -> list[Pick]:
        if self.record:
            self.calls.append((current, viewed, bought))
        picks: list[Pick] = []
        categories: Counter[str | None] = Counter()
        for strategy in spec.strategies:
            for product in self._candidates(strategy, current, viewed):
                if len(picks) >= spec.limit:
                    return picks
                if (
                    product.id == current
                    or self.keys[product.id] in bought
                    or (spec.in_stock and not product.in_stock)
                    or any(p.product.id == product.id for p in picks)
                    or (spec.per_category and categories[product.category] >= spec.per_category)
                ):
                    continue
                categories[product.category] += 1
                picks.append(Pick(product, strategy))
        return picks
