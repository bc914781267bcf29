"""``GET /v1/recommendations/products?site=…&rule=…``: which recommended products were
clicked, and bought after the click, per variant and strategy of a rule.

Read from the product rollups the writer keeps (see store.product_rollups): a row per
product, variant and strategy that had a click in the range, with the clicks (once per
decision and product), the conversions (a purchase of the product by the same visitor
within 7 days of their latest click on it) and the revenue (the product's catalogue price,
else its share of the order). ``since`` and ``until`` are UTC dates (``until`` included;
the last 30 days by default, at most 400): the days of the clicks.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .bodies import json_response
from .keys import authorised_site
from .reports import day_number, parse_range, rule_of

__all__ = ["ProductRow", "ProductsReport", "products_endpoint"]


class ProductRow(msgspec.Struct, frozen=True):
    """One product as one strategy of one variant recommended it. Rates are null where
    nothing was clicked."""

    product: str
    variant: str
    strategy: str
    clicks: int
    conversions: int
    revenue: float
    conversion_rate: float | None  # conversions / clicks
    revenue_per_click: float | None  # revenue / clicks


class ProductsReport(msgspec.Struct, frozen=True):
    site: str
    rule: str
    since: str  # the first day, YYYY-MM-DD
    until: str  # the last day (included)
    products: list[ProductRow]  # by product, then variant and strategy


def _now_ms() -> int:
    """Epoch ms (tests freeze it)."""
    return time.time_ns() // 1_000_000


async def products_endpoint(request: Request) -> Response:
    runtime, site = await authorised_site(request, "of the recommendations")
    params = request.query_params
    rule = rule_of(site, params, "whose recommendations to list")
    today = datetime.fromtimestamp(_now_ms() / 1000, UTC).date()
    since, until, _ = parse_range(
        {k: v for k, v in params.items() if k != "interval"}, today, ("since", "until")
    )
    counts = await runtime.store.product_report(
        site.name, rule.id, day_number(since), day_number(until) + 1
    )
    rows = [
        ProductRow(
            c.product,
            c.variant,
            c.strategy,
            c.clicks,
            c.conversions,
            c.revenue,
            c.conversions / c.clicks if c.clicks else None,
            c.revenue / c.clicks if c.clicks else None,
        )
        for c in counts
    ]
    return json_response(
        ProductsReport(site.name, rule.id, since.isoformat(), until.isoformat(), rows)
    )
