"""Product rollups: recommendation clicks, and the purchases they led to, per product and per
strategy, kept by the writer in the same transaction as the records (like store.rollups), so
results and reports read a few rows however large the logs.

A click on a recommended product is a ``click`` event on a decision with one product and a
``detail`` naming the strategy that picked it (``{"strategy": "bought_together"}``). It
counts once per (decision, product), under the idempotency key ``click <decision>
<product>``; the variant's own click (in ``rollups``) still counts once per decision: the
click also holds ``click <decision>``, which it need not find new to be stored (another card
of the same widget may have been clicked), but whose first holder counts the variant's
click (see :func:`first_clicks`). A click whose detail is not JSON, or names a strategy that
is not one of sitecue's, or whose product id is malformed, is an ordinary click: it counts
for the variant, never per product, and the batch it came in is kept.

Each visitor's latest click per product is kept in ``product_clicks`` (a visitor, a product,
the click's rule, variant and strategy, when, and when it converted). A purchase (the site's
``catalog.purchase`` event with its products, see ``Store.purchases``) credits each product
it holds that the same visitor clicked in a recommendation within ATTRIBUTION_MS before it
(the latest such click), once per click, so a purchase replayed with new event ids credits
nothing more: a conversion, and revenue = the product's price in the catalogue, else the
order's value (when positive) divided by the number of products bought. Both count on the
click's day, under its rule, variant and strategy (a day's conversion rate is of its clicks).

Two tables hold the counts: ``strategy_rollups`` (site, rule, variant, strategy, day), which
results and reports read (O(days x strategies)), and ``product_rollups`` (the same and the
product), which the per-product listing reads.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from .base import EventRecord, Row

__all__ = [
    "ATTRIBUTION_MS",
    "CLICKED_POSTGRES",
    "CLICKED_SQLITE",
    "CONVERT_CLICKS",
    "CONVERT_CLICKS_POSTGRES",
    "PRICES_POSTGRES",
    "PRICES_SQLITE",
    "PRODUCTS_REPORT",
    "PRODUCT_ROLLUPS_POSTGRES",
    "PRODUCT_ROLLUPS_SQLITE",
    "PRUNE_CLICKS",
    "STRATEGIES",
    "STRATEGY_REPORT",
    "STRATEGY_RESULTS",
    "UPSERT_CLICKS_POSTGRES",
    "UPSERT_CLICKS_SQLITE",
    "UPSERT_PRODUCTS",
    "UPSERT_PRODUCTS_POSTGRES",
    "UPSERT_STRATEGIES",
    "UPSERT_STRATEGIES_POSTGRES",
    "ProductCounts",
    "ProductTally",
    "Purchase",
    "Purchases",
    "StrategyCounts",
    "StrategyDay",
    "click_keys",
    "clicked_of",
    "columns",
    "first_clicks",
    "pairs_json",
    "priced_of",
    "product_click",
    "purchase_rows",
]

# site -> the name of its purchase event (its catalog's ``purchase``); the runtime sets it.
Purchases = Mapping[str, str]
# A stored purchase: (site, visitor, at, the products bought, the order's value or None).
Purchase = tuple[str, str, int, tuple[str, ...], float | None]
DAY_MS = 86_400_000
ATTRIBUTION_MS = 7 * DAY_MS  # a purchase credits clicks at most this long before it
# The strategies sitecue recommends by (config.Strategy; a test keeps them equal): a click
# naming any other was not made on one of our cards.
STRATEGIES = frozenset(
    ("recently_viewed", "viewed_together", "bought_together", "popular_in_category", "popular")
)
# A product id as the catalogue allows it (catalog.PRODUCT_ID): no spaces, so the key
# "click <decision> <product>" never collides with another.
_PRODUCT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}")
_MAX_DETAIL = 256  # a click's detail is a strategy name; anything longer is not ours


class _Detail(msgspec.Struct):
    strategy: str


_detail = msgspec.json.Decoder(_Detail).decode
_encode = msgspec.json.Encoder().encode


def product_click(e: EventRecord) -> tuple[str, str] | None:
    """``(product, strategy)`` when ``e`` is a click on a recommended product, else None
    (a forged or malformed detail makes it an ordinary click, never an error)."""
    if (
        e.type != "click"
        or e.decision is None
        or e.rule is None
        or e.variant is None
        or e.products is None
        or len(e.products) != 1
        or e.detail is None
        or len(e.detail) > _MAX_DETAIL
    ):
        return None
    return _clicked(e.products[0], e.detail)


@functools.lru_cache(maxsize=4096)
def _clicked(product: str, detail: str) -> tuple[str, str] | None:
    """The product and strategy of a click's product and detail, when both are ours
    (cached: the writer asks several times per event, and cards repeat)."""
    if not _PRODUCT_ID.fullmatch(product):
        return None
    try:
        strategy = _detail(detail).strategy
    except msgspec.DecodeError:  # not JSON, or not {"strategy": "..."}
        return None
    return (product, strategy) if strategy in STRATEGIES else None


def click_keys(e: EventRecord) -> tuple[str, str] | None:
    """A product click's own feedback key, ``click <decision> <product>``, and the one it
    shares with every click on its decision, ``click <decision>``; None for other events."""
    clicked = product_click(e)
    if clicked is None:
        return None
    return f"click {e.decision} {clicked[0]}", f"click {e.decision}"


def first_clicks(events: Sequence[EventRecord], new: Iterable[Sequence[Any]]) -> list[bool]:
    """Per event, whether it is a product click whose shared ``click <decision>`` key was new
    in ``record_keys`` (``new``: the ``(site, key)`` that were) and held by no record before
    it in the group: the one that counts its variant's click."""
    fresh = {(site, key) for site, key in new}
    taken: set[tuple[str, str]] = set()
    first = []
    for e in events:
        keys = click_keys(e)
        if keys is None:
            first.append(False)
            if e.type == "click" and e.decision is not None:
                taken.add((e.site, f"click {e.decision}"))
            continue
        shared = (e.site, keys[1])
        first.append(shared in fresh and shared not in taken)
        taken.add(shared)
    return first


def purchase_rows(events: Iterable[EventRecord], purchases: Purchases) -> list[Purchase]:
    """The stored purchases, ``(site, visitor, at, products, value)``, oldest first: events
    (a page event or a trigger) named as their site's purchase event, of a known visitor,
    with products (each once); ``value`` the order's, when positive (the browser claims it)."""
    rows = []
    for e in events:
        if (
            e.type in ("event", "trigger")
            and e.visitor != "-"
            and e.name is not None
            and e.products
            and purchases.get(e.site) == e.name
        ):
            value = e.value if e.value is not None and e.value > 0 else None
            bought = tuple(dict.fromkeys(p for p in e.products if _PRODUCT_ID.fullmatch(p)))
            if bought:
                rows.append((e.site, e.visitor, e.at, bought, value))
    return sorted(rows, key=lambda r: r[2])


class ProductTally:
    """The deltas one group adds to the product and strategy rollups, and the clicks it
    records or converts in ``product_clicks``."""

    def __init__(self) -> None:
        # (site, rule, variant, strategy, product, day) -> [clicks, conversions, revenue]
        self._counts: dict[tuple[str, str, str, str, str, int], list[float]] = {}
        # (site, visitor, product) -> (at, rule, variant, strategy): the latest click each
        self._clicks: dict[tuple[str, str, str], tuple[int, str, str, str]] = {}

    def _add(self, key: tuple[str, str, str, str, str, int], column: int, by: float) -> None:
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = [0, 0, 0.0]
        counts[column] += by

    def clicks(self, events: Sequence[EventRecord], first: Sequence[bool], tally: Any) -> None:
        """Count the stored ``events``' product clicks, each first of its decision (see
        first_clicks) also as its variant's click in ``tally`` (store.rollups.Tally), and
        keep each visitor's latest click per product."""
        for e, counts_variant in zip(events, first, strict=True):
            clicked = product_click(e)
            if clicked is None:
                continue
            assert e.rule is not None and e.variant is not None
            product, strategy = clicked
            self._add((e.site, e.rule, e.variant, strategy, product, e.at // DAY_MS), 0, 1)
            if counts_variant:
                tally.add(e.site, e.rule, e.variant, e.at, "clicks")
            if e.visitor != "-":
                held = self._clicks.get((e.site, e.visitor, product))
                if held is None or e.at > held[0]:
                    self._clicks[(e.site, e.visitor, product)] = (e.at, e.rule, e.variant, strategy)

    def click_rows(self) -> list[Row]:
        """``(site, visitor, product, at, rule, variant, strategy)`` for ``product_clicks``,
        one per key, sorted (a fixed lock order)."""
        return [(*key, *click) for key, click in sorted(self._clicks.items())]

    def credit(
        self,
        purchases: Sequence[Purchase],
        clicked: Iterable[Sequence[Any]],
        prices: Mapping[tuple[str, str], float | None],
    ) -> list[Row]:
        """Credit the ``purchases`` (purchase_rows) to the clicks read (``site, visitor,
        product, at, rule, variant, strategy, converted``): each product bought that the
        visitor clicked at most ATTRIBUTION_MS before, unconverted, gets a conversion and
        its revenue on the click's day. Returns the converted clicks, ``(converted, site,
        visitor, product)``."""
        rows = {(r[0], r[1], r[2]): list(r[3:]) for r in clicked}
        changed: list[Row] = []
        for site, visitor, at, bought, value in purchases:
            for product in bought:
                row = rows.get((site, visitor, product))
                if row is None:
                    continue
                click_at, rule, variant, strategy, converted = row
                if converted is not None or not at - ATTRIBUTION_MS <= click_at <= at:
                    continue
                price = prices.get((site, product))
                if price is not None and price >= 0:
                    revenue = float(price)
                else:
                    revenue = value / len(bought) if value is not None else 0.0
                key = (site, rule, variant, strategy, product, click_at // DAY_MS)
                self._add(key, 1, 1)
                self._add(key, 2, revenue)
                row[4] = at
                changed.append((at, site, visitor, product))
        return changed

    def product_rows(self) -> list[Row]:
        """``(site, rule, variant, strategy, product, day, clicks, conversions, revenue)``,
        sorted."""
        return [
            (*key, int(c[0]), int(c[1]), float(c[2])) for key, c in sorted(self._counts.items())
        ]

    def strategy_rows(self) -> list[Row]:
        """The same summed over products: ``(site, rule, variant, strategy, day, clicks,
        conversions, revenue)``, sorted."""
        sums: dict[tuple[str, str, str, str, int], list[float]] = {}
        for (site, rule, variant, strategy, _, day), c in self._counts.items():
            cell = sums.setdefault((site, rule, variant, strategy, day), [0, 0, 0.0])
            for i in range(3):
                cell[i] += c[i]
        return [(*key, int(c[0]), int(c[1]), float(c[2])) for key, c in sorted(sums.items())]


def pairs_json(rows: Iterable[Sequence[Any]]) -> str:
    """Rows as one JSON array, for SQLite's ``json_each``."""
    return _encode(list(rows)).decode()


class StrategyCounts(msgspec.Struct, frozen=True):
    """One strategy of one variant of a rule, summed over the days asked."""

    variant: str
    strategy: str
    clicks: int  # clicks on the products it recommended (once per decision and product)
    conversions: int  # of those clicks, the ones a purchase of the product followed
    revenue: float  # their products' prices (or shares of the orders)


class StrategyDay(msgspec.Struct, frozen=True):
    """One strategy of one variant on one UTC day (clicks that day, and their conversions)."""

    day: int
    variant: str
    strategy: str
    clicks: int
    conversions: int
    revenue: float


class ProductCounts(msgspec.Struct, frozen=True):
    """One recommended product of a rule, by variant and strategy, summed over the days."""

    product: str
    variant: str
    strategy: str
    clicks: int
    conversions: int
    revenue: float


def _tables(integer: str, real: str, without_rowid: str) -> str:
    return f"""
CREATE TABLE strategy_rollups (
    site TEXT NOT NULL, rule TEXT NOT NULL, variant TEXT NOT NULL, strategy TEXT NOT NULL,
    day INTEGER NOT NULL, clicks {integer} NOT NULL DEFAULT 0,
    conversions {integer} NOT NULL DEFAULT 0, revenue {real} NOT NULL DEFAULT 0,
    PRIMARY KEY (site, rule, day, variant, strategy)
){without_rowid};
CREATE TABLE product_rollups (
    site TEXT NOT NULL, rule TEXT NOT NULL, variant TEXT NOT NULL, strategy TEXT NOT NULL,
    product TEXT NOT NULL, day INTEGER NOT NULL, clicks {integer} NOT NULL DEFAULT 0,
    conversions {integer} NOT NULL DEFAULT 0, revenue {real} NOT NULL DEFAULT 0,
    PRIMARY KEY (site, rule, day, variant, strategy, product)
){without_rowid};
CREATE TABLE product_clicks (
    site TEXT NOT NULL, visitor TEXT NOT NULL, product TEXT NOT NULL, at {integer} NOT NULL,
    rule TEXT NOT NULL, variant TEXT NOT NULL, strategy TEXT NOT NULL, converted {integer},
    PRIMARY KEY (site, visitor, product)
){without_rowid};
CREATE INDEX product_clicks_at ON product_clicks (at);
"""


# The migration of each engine (appended to its MIGRATIONS).
PRODUCT_ROLLUPS_SQLITE = _tables("INTEGER", "REAL", " WITHOUT ROWID")
PRODUCT_ROLLUPS_POSTGRES = _tables("BIGINT", "DOUBLE PRECISION", "")

_COUNTED = ("clicks", "conversions", "revenue")
_ADD = ", ".join(f"{c} = {{t}}.{c} + excluded.{c}" for c in _COUNTED)
UPSERT_STRATEGIES = (
    "INSERT INTO strategy_rollups (site, rule, variant, strategy, day, clicks, conversions,"
    " revenue) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (site, rule, day, variant, strategy) DO UPDATE SET "
    + _ADD.format(t="strategy_rollups")
)
UPSERT_PRODUCTS = (
    "INSERT INTO product_rollups (site, rule, variant, strategy, product, day, clicks,"
    " conversions, revenue) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (site, rule, day, variant, strategy, product) DO UPDATE SET "
    + _ADD.format(t="product_rollups")
)
UPSERT_STRATEGIES_POSTGRES = (
    UPSERT_STRATEGIES.split(" VALUES ")[0]
    + " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[],"
    " $6::bigint[], $7::bigint[], $8::float8[]) ON CONFLICT"
    + UPSERT_STRATEGIES.split(" ON CONFLICT")[1]
)
UPSERT_PRODUCTS_POSTGRES = (
    UPSERT_PRODUCTS.split(" VALUES ")[0]
    + " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
    " $6::int[], $7::bigint[], $8::bigint[], $9::float8[]) ON CONFLICT"
    + UPSERT_PRODUCTS.split(" ON CONFLICT")[1]
)


def _j(i: int) -> str:
    return f"json_extract(x.value, '$[{i}]')"


# A visitor's latest click per product replaces an older one, and is unconverted again: a
# new click may convert anew, an old one (arriving late) changes nothing.
_ON_CLICK = (
    " ON CONFLICT (site, visitor, product) DO UPDATE SET at = excluded.at, rule = excluded.rule,"
    " variant = excluded.variant, strategy = excluded.strategy, converted = NULL"
    " WHERE excluded.at > product_clicks.at"
)
UPSERT_CLICKS_SQLITE = (
    "INSERT INTO product_clicks (site, visitor, product, at, rule, variant, strategy)"
    f" SELECT {', '.join(_j(i) for i in range(7))} FROM json_each(?) AS x WHERE true" + _ON_CLICK
)
UPSERT_CLICKS_POSTGRES = (
    "INSERT INTO product_clicks (site, visitor, product, at, rule, variant, strategy)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[],"
    " $6::text[], $7::text[])" + _ON_CLICK
)
_CLICK_COLUMNS = "c.site, c.visitor, c.product, c.at, c.rule, c.variant, c.strategy, c.converted"
CLICKED_SQLITE = (
    f"SELECT {_CLICK_COLUMNS} FROM json_each(?) AS x CROSS JOIN product_clicks AS c"
    f" WHERE c.site = {_j(0)} AND c.visitor = {_j(1)} AND c.product = {_j(2)}"
)
# Locked, in key order: two nodes crediting one visitor's purchase at once credit it once.
CLICKED_POSTGRES = (
    f"SELECT {_CLICK_COLUMNS}"
    " FROM unnest($1::text[], $2::text[], $3::text[]) AS x(site, visitor, product)"
    " JOIN product_clicks AS c"
    " ON c.site = x.site AND c.visitor = x.visitor AND c.product = x.product"
    " ORDER BY c.site, c.visitor, c.product FOR UPDATE OF c"
)
CONVERT_CLICKS = (
    "UPDATE product_clicks SET converted = ? WHERE site = ? AND visitor = ? AND product = ?"
)
CONVERT_CLICKS_POSTGRES = (
    "UPDATE product_clicks AS c SET converted = x.converted"
    " FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])"
    " AS x(converted, site, visitor, product)"
    " WHERE c.site = x.site AND c.visitor = x.visitor AND c.product = x.product"
)
PRICES_SQLITE = (
    f"SELECT p.site, p.id, p.price FROM json_each(?) AS x CROSS JOIN products AS p"
    f" WHERE p.site = {_j(0)} AND p.id = {_j(1)}"
)
PRICES_POSTGRES = (
    "SELECT p.site, p.id, p.price FROM unnest($1::text[], $2::text[]) AS x(site, id)"
    " JOIN products AS p ON p.site = x.site AND p.id = x.id"
)
# Clicks older than the attribution window can credit nothing: retention prunes them.
PRUNE_CLICKS = (
    "DELETE FROM product_clicks WHERE (site, visitor, product) IN (SELECT site, visitor,"
    " product FROM product_clicks WHERE at < ? ORDER BY at LIMIT ?)"
)
# Reads, both engines (``?`` numbered for PostgreSQL); sums cast back to integers.
_SUMS = "CAST(SUM(clicks) AS BIGINT), CAST(SUM(conversions) AS BIGINT), SUM(revenue)"
STRATEGY_RESULTS = (
    f"SELECT variant, strategy, {_SUMS} FROM strategy_rollups WHERE site = ? AND rule = ?"
    " GROUP BY variant, strategy ORDER BY variant, strategy"
)
STRATEGY_REPORT = (
    "SELECT day, variant, strategy, clicks, conversions, revenue FROM strategy_rollups"
    " WHERE site = ? AND rule = ? AND day >= ? AND day < ? ORDER BY day, variant, strategy"
)
PRODUCTS_REPORT = (
    f"SELECT product, variant, strategy, {_SUMS} FROM product_rollups"
    " WHERE site = ? AND rule = ? AND day >= ? AND day < ?"
    " GROUP BY product, variant, strategy ORDER BY product, variant, strategy"
)


def columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows as one list per column, for PostgreSQL's ``unnest``."""
    return [[row[i] for row in rows] for i in range(width)]


def clicked_of(purchases: Iterable[Purchase]) -> list[Row]:
    """The ``(site, visitor, product)`` the purchases name, each once, sorted."""
    return sorted({(site, visitor, p) for site, visitor, _, bought, _ in purchases for p in bought})


def priced_of(credited: Iterable[Sequence[Any]]) -> list[Row]:
    """The ``(site, product)`` of the clicks read, each once, sorted."""
    return sorted({(r[0], r[2]) for r in credited})
