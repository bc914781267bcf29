"""Recommendation attribution as results, reports and the dashboard show it: per variant of a
rule and per strategy its widget recommends by, the clicks on recommended products, the
purchases they led to and their revenue (counted by the writer: see
store.product_rollups). A variant's configured strategies are listed in its widget's order,
zeros included, so an experiment that pits two strategies shows them side by side; any
other strategy the rollups still hold (a config since changed) follows."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from .rules import CompiledRule, CompiledSite
from .store import StrategyCounts, StrategyDay

__all__ = ["StrategyResult", "recommends", "strategies_of", "strategy_results", "summed"]


class StrategyResult(msgspec.Struct, frozen=True):
    """One strategy of one variant. Rates are null where no product was clicked."""

    variant: str
    strategy: str
    clicks: int  # on the products it recommended, once per decision and product
    conversions: int  # clicks a purchase of the product followed within 7 days
    revenue: float  # the products' catalogue prices (else a share of the order)
    conversion_rate: float | None  # conversions / clicks
    revenue_per_click: float | None  # revenue / clicks


def strategies_of(site: CompiledSite, rule: CompiledRule) -> dict[str, tuple[str, ...]]:
    """Per variant of ``rule`` (config order), the strategies its widget recommends by, in
    its order (none for a control or a widget that does not recommend)."""
    out: dict[str, tuple[str, ...]] = {}
    for v in rule.variants:
        widget = site.config.widgets.get(v.widget) if v.widget is not None else None
        out[v.id] = tuple(widget.recommend.strategies) if widget and widget.recommend else ()
    return out


def recommends(site: CompiledSite, rule: CompiledRule) -> bool:
    """Whether some variant of ``rule`` shows recommended products."""
    return any(strategies_of(site, rule).values())


def _result(
    variant: str, strategy: str, clicks: int, conversions: int, revenue: float
) -> StrategyResult:
    return StrategyResult(
        variant, strategy, clicks, conversions, revenue,
        conversions / clicks if clicks else None, revenue / clicks if clicks else None,
    )  # fmt: skip


def strategy_results(
    site: CompiledSite, rule: CompiledRule, counts: Iterable[StrategyCounts]
) -> list[StrategyResult]:
    """The rows of ``rule``: each variant's configured strategies (zeros included), then
    the other strategies the ``counts`` hold; variants in config order, then the others."""
    held = {(c.variant, c.strategy): c for c in counts}
    order = [(v, s) for v, mine in strategies_of(site, rule).items() for s in mine]
    variants = list(strategies_of(site, rule))
    extra = sorted(
        set(held) - set(order),
        key=lambda k: (variants.index(k[0]) if k[0] in variants else len(variants), k),
    )
    rows = []
    for variant, strategy in order + extra:
        c = held.get((variant, strategy))
        if c is None:
            rows.append(_result(variant, strategy, 0, 0, 0.0))
        else:
            rows.append(_result(variant, strategy, c.clicks, c.conversions, c.revenue))
    return rows


def summed(days: Iterable[StrategyDay]) -> list[StrategyCounts]:
    """Days summed per variant and strategy."""
    sums: dict[tuple[str, str], list[float]] = {}
    for d in days:
        cell = sums.setdefault((d.variant, d.strategy), [0, 0, 0.0])
        cell[0] += d.clicks
        cell[1] += d.conversions
        cell[2] += d.revenue
    return [StrategyCounts(v, s, int(c[0]), int(c[1]), float(c[2])) for (v, s), c in sums.items()]
