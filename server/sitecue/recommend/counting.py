"""What one batch of product events adds to a site's counts, in memory and pure: the job
(sitecue.recommend.job) reads the events and the visitors' ``Touched`` records, calls
``Counter.add`` for each event, and commits ``Counter.batch`` with its checkpoint.

The rules, each chosen so that nobody can buy influence with a flood of requests:

- A visitor counts once per product and kind (a viewer, a cart adder, a buyer) in a
  product's totals, and once a UTC day in its popularity, however often they repeat it.
- A pair of products counts a visitor once: the first time that visitor touched both within
  the window (``viewed_within``, ``bought_within``; the lines of one purchase are bought
  together), never again while the visitor's record lives.
- A visitor's record holds at most MAX_PRODUCTS products of a kind; products older than the
  window leave it to make room (their pairs may then count again, once per window), and
  when every one is recent a new product is not counted at all: one visitor adds at most
  ``MAX_PRODUCTS * (MAX_PRODUCTS - 1) / 2`` pairs a window, as a fair shopper could.
- Only products of the site's catalogue count: made-up ids (validated by pattern only,
  from any page) cannot fill the tables.

Late events (spooled while the store was down, counted after newer ones) are compared by
their own time, so they pair with what the visitor touched around then.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from typing import NamedTuple

import msgspec

from ..config import Catalog, duration_ms
from ..store.recommend import Batch, Kind, ProductEvent, Touched

__all__ = [
    "DAY_MS",
    "LATE_MS",
    "MAX_PRODUCTS",
    "PAIR_BASE",
    "Counter",
    "Windows",
    "kind_of",
]

DAY_MS = 86_400_000
MAX_PRODUCTS = 50  # products of one kind in one visitor's record
# A visitor's record outlives its window by this much, so that records spooled through an
# outage of up to two days still pair with what the visitor touched before it.
LATE_MS = 2 * DAY_MS
PAIR_BASE = 64  # a counted pair (i, j) is stored as i * PAIR_BASE + j; > MAX_PRODUCTS
_SLOTS: dict[Kind, int] = {"viewed": 0, "cart": 1, "bought": 2}  # in a day's counts
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Touched).decode


class Windows(NamedTuple):
    """A site's windows in ms: pairs of views and of purchases; how long a visitor's record
    of each kind is kept (at least a day, as popularity counts a visitor once a day, and
    LATE_MS more); and how
    many UTC days popularity sums (``popular_over``, rounded up to whole days)."""

    viewed: int
    bought: int
    keep: dict[Kind, int]
    popular_days: int

    @classmethod
    def of(cls, catalog: Catalog) -> Windows:
        viewed, bought = duration_ms(catalog.viewed_within), duration_ms(catalog.bought_within)
        keep: dict[Kind, int] = {
            "viewed": max(viewed, DAY_MS) + LATE_MS,
            "cart": DAY_MS + LATE_MS,
            "bought": max(bought, DAY_MS) + LATE_MS,
        }
        popular = -(-duration_ms(catalog.popular_over) // DAY_MS)
        return cls(viewed, bought, keep, popular)


def kind_of(event: ProductEvent, catalog: Catalog) -> Kind | None:
    """What the event says the visitor did (see the design's event vocabulary); None for
    the others (a click on a recommendation)."""
    if event.type == "product_view":
        return "viewed"
    if event.type in ("trigger", "event") and event.name is not None:
        if event.name == catalog.purchase:
            return "bought"
        if event.name == catalog.cart:
            return "cart"
    return None


class Counter:
    """The counts one batch adds. ``records`` holds the visitors' records as read from the
    store (msgpack ``Touched``, by kind and visitor); the ones changed are written back."""

    def __init__(
        self,
        catalog: Catalog,
        known: Collection[str],
        records: dict[tuple[Kind, str], bytes],
    ) -> None:
        self.catalog = catalog
        self.windows = Windows.of(catalog)
        self._windows = {"viewed": self.windows.viewed, "bought": self.windows.bought}
        self.known = known
        self._stored = records
        self._touched: dict[tuple[Kind, str], tuple[Touched, set[int], dict[str, int]]] = {}
        self._changed: set[tuple[Kind, str]] = set()
        # Each pair as "kind a b" (ids have no spaces): a string sorts, hashes and packs
        # faster than a tuple, and in the same order (a space sorts before any id's byte).
        self.pairs: defaultdict[str, int] = defaultdict(int)
        self.totals: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.days: defaultdict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0])

    def add(self, event: ProductEvent, kind: Kind | None = None) -> None:
        """Count one event (its products, each once, in the order given); ``kind``: what
        ``kind_of`` says of it, when the caller knows already."""
        if kind is None:
            kind = kind_of(event, self.catalog)
            if kind is None:
                return
        products = event.products
        if len(products) == 1:  # most events: a product view
            if products[0] not in self.known:
                return
        else:
            products = [p for p in dict.fromkeys(products) if p in self.known]
            if not products:
                return
        key = (kind, event.visitor)
        record = self._touched.get(key) or self._record(key)
        slot = _SLOTS[kind]
        window = None if kind == "cart" else self._windows[kind]
        for product in products:
            self._touch(kind, slot, window, record, product, event.at)
        self._changed.add(key)

    def _record(self, key: tuple[Kind, str]) -> tuple[Touched, set[int], dict[str, int]]:
        record = self._touched.get(key)
        if record is None:
            stored = self._stored.get(key)
            touched = _decode(stored) if stored is not None else Touched([], [], [])
            index = {p: i for i, p in enumerate(touched.products)}
            record = self._touched[key] = (touched, set(touched.pairs), index)
        return record

    def _touch(
        self,
        kind: Kind,
        slot: int,
        window: int | None,
        record: tuple[Touched, set[int], dict[str, int]],
        product: str,
        at: int,
    ) -> None:
        touched, counted, index = record
        products, times = touched.products, touched.at
        day = at // DAY_MS
        i = index.get(product)
        if i is None:
            if len(products) >= MAX_PRODUCTS:
                self._compact(kind, record, at)
                products, times = touched.products, touched.at
                if len(products) >= MAX_PRODUCTS:
                    return  # a full record of recent products: this one does not count
            i = index[product] = len(products)
            products.append(product)
            times.append(at)
            if window is not None:
                self.totals[(kind, product)] += 1
            first_today = True
        else:
            first_today = day > times[i] // DAY_MS
        if first_today:
            self.days[(product, day)][slot] += 1
        if window is not None:
            lo, hi, row = at - window, at + window, i * PAIR_BASE
            for j, t in enumerate(times):
                if lo <= t <= hi and j != i:
                    pair = j * PAIR_BASE + i if j < i else row + j
                    if pair not in counted:
                        counted.add(pair)
                        other = products[j]
                        if product < other:
                            self.pairs[f"{kind} {product} {other}"] += 1
                        else:
                            self.pairs[f"{kind} {other} {product}"] += 1
        if at > times[i]:
            times[i] = at

    def _compact(
        self, kind: Kind, record: tuple[Touched, set[int], dict[str, int]], at: int
    ) -> None:
        """Drop the products touched longer than the kind's window before ``at``, with
        their counted pairs; the others keep their order (and get new indexes)."""
        touched, counted, index = record
        keep = self.windows.keep[kind]
        kept = [i for i, t in enumerate(touched.at) if at - t <= keep]
        if len(kept) == len(touched.products):
            return
        renumber = {old: new for new, old in enumerate(kept)}
        pairs = set()
        for pair in counted:
            i, j = divmod(pair, PAIR_BASE)
            if i in renumber and j in renumber:
                pairs.add(renumber[i] * PAIR_BASE + renumber[j])
        touched.products = [touched.products[i] for i in kept]
        touched.at = [touched.at[i] for i in kept]
        counted.clear()
        counted.update(pairs)
        index.clear()
        index.update({p: i for i, p in enumerate(touched.products)})

    def batch(self, done: int) -> Batch:
        """The batch's rows, to commit with the checkpoint ``done``."""
        visitors: list[tuple[str, str, bytes, int]] = []
        for key in self._changed:
            touched, counted, _ = self._touched[key]
            touched.pairs = list(counted)
            visitors.append((key[0], key[1], _encode(touched), max(touched.at)))
        return Batch(
            done,
            visitors,
            list(self.pairs.items()),
            [(k, p, n) for (k, p), n in self.totals.items()],
            [(p, d, n[0], n[1], n[2]) for (p, d), n in self.days.items()],
        )
