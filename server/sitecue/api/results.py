"""``GET /v1/results?site=…&rule=…``: how each variant of an experiment is doing.

Per variant: the visitors exposed (decided into it, the control too), the impressions,
the conversions (the rule's goal after exposure), the conversion rate, and against the
control the absolute and relative uplift with 95% intervals and a p-value; the same for
revenue per visitor (Welch's t-test, and the delta method for the relative uplift). A
sample-ratio-mismatch check against the configured weights flags a broken experiment.
Everything is read from the rollups the writer keeps, a few rows whatever the traffic.
Where the rule's widgets recommend products, ``strategies`` gives per variant and strategy
the clicks on recommended products, the purchases they led to and their revenue (see
sitecue.attribution), so an experiment can pit one strategy against another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ..attribution import StrategyResult, strategy_results
from ..errors import BadRequest, NotFound
from ..rules import CompiledRule, CompiledSite
from ..stats import Moments, compare, compare_means, sample_ratio
from ..store import VariantCounts
from .bodies import json_response
from .keys import authorised_site

if TYPE_CHECKING:
    from ..runtime import Runtime

__all__ = ["Results", "VariantResult", "experiment_results", "results_endpoint"]

Interval = tuple[float, float]


class VariantResult(msgspec.Struct, frozen=True):
    variant: str
    weight: float  # configured, in percent
    control: bool
    visitors: int  # exposed
    impressions: int
    conversions: int
    rate: float
    uplift: float | None  # absolute, against control; null for the control itself
    uplift_ci: Interval | None
    relative_uplift: float | None
    relative_uplift_ci: Interval | None
    p_value: float | None
    revenue: float  # the goal events' values of its visitors after their first exposure
    revenue_per_visitor: float
    # Revenue per visitor against control (null for the control itself, and where the data
    # cannot say: fewer than two visitors a side, no spread, no control revenue).
    revenue_uplift: float | None
    revenue_uplift_ci: Interval | None
    revenue_p_value: float | None  # Welch's t-test
    relative_revenue_uplift: float | None
    relative_revenue_uplift_ci: Interval | None  # delta method


class SampleRatioCheck(msgspec.Struct, frozen=True):
    chi2: float
    p_value: float
    mismatch: bool  # true: the split is too far from the weights to trust the results


class Results(msgspec.Struct, frozen=True):
    site: str
    rule: str
    goal: str | None
    confidence: float
    variants: list[VariantResult]
    sample_ratio: SampleRatioCheck
    # Per variant and strategy, recommendation clicks, conversions and revenue.
    strategies: list[StrategyResult] = msgspec.field(default_factory=list)


async def experiment_results(runtime: Runtime, site: CompiledSite, rule: CompiledRule) -> Results:
    """The results of one rule's experiment, from the store's rollups."""
    counted = {c.variant: c for c in await runtime.store.results(site.name, rule.id)}
    # The control shows nothing; without one, the first variant is the baseline.
    control = next((v for v in rule.variants if v.widget is None), rule.variants[0])
    base = counted.get(control.id)
    baseline = (base.conversions, base.visitors) if base else (0, 0)
    base_revenue = _moments(base)
    variants = []
    for v in rule.variants:
        c = counted.get(v.id)
        mine = (c.conversions, c.visitors) if c else (0, 0)
        versus = compare(baseline, mine)
        revenue = _moments(c)
        money = compare_means(base_revenue, revenue)
        is_control = v.id == control.id
        variants.append(
            VariantResult(
                variant=v.id,
                weight=v.weight,
                control=is_control,
                visitors=mine[1],
                impressions=c.impressions if c else 0,
                conversions=mine[0],
                rate=versus.rate,
                uplift=None if is_control else versus.uplift,
                uplift_ci=None if is_control else versus.uplift_ci,
                relative_uplift=None if is_control else versus.relative,
                relative_uplift_ci=None if is_control else versus.relative_ci,
                p_value=None if is_control else versus.p_value,
                revenue=revenue.total,
                revenue_per_visitor=money.mean,
                revenue_uplift=None if is_control else money.uplift,
                revenue_uplift_ci=None if is_control else money.uplift_ci,
                revenue_p_value=None if is_control else money.p_value,
                relative_revenue_uplift=None if is_control else money.relative,
                relative_revenue_uplift_ci=None if is_control else money.relative_ci,
            )
        )
    srm = sample_ratio([r.visitors for r in variants], [v.weight for v in rule.variants])
    return Results(
        site.name,
        rule.id,
        rule.rule.goal,
        0.95,
        variants,
        SampleRatioCheck(srm.chi2, srm.p_value, srm.mismatch),
        strategy_results(site, rule, await runtime.store.strategy_results(site.name, rule.id)),
    )


def _moments(counts: VariantCounts | None) -> Moments:
    if counts is None:
        return Moments(0, 0.0, 0.0)
    return Moments(counts.visitors, counts.revenue, counts.revenue_sq)


async def results_endpoint(request: Request) -> Response:
    runtime, site = await authorised_site(request, "of the experiment")
    rule_id = request.query_params.get("rule")
    if not rule_id:
        raise BadRequest("rule: expected the id of the experiment's rule")
    rule = next((r for r in site.rules if r.id == rule_id), None)
    if rule is None:
        raise NotFound(f"rule: site '{site.name}' has no rule '{rule_id}'")
    return json_response(await experiment_results(runtime, site, rule))
