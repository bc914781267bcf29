"""``GET /v1/results/holdout?site=…[&goal=…]``: the lift of all of a site's personalisation.

A site with ``"holdout": 0.05`` keeps 5% of its browsers out of every campaign (see
:mod:`sitecue.holdout`). This compares, by conversions per visitor, the visitors held out
where some rule would have shown with those given at least one rule: the same moment of
eligibility on both sides, so the difference is what the campaigns did, all together. A
goal reached before that moment does not count. The goals are the site's rules' goals, or
the one ``goal`` asked for.

Both groups are defined by the decision log, so the comparison holds only while the share
stays put: a visitor ever held out counts as held out. A sample-ratio check against the
configured share flags a broken split. A control of an experiment counts as personalised:
it is the programme as it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ..errors import NotFound
from ..stats import compare, sample_ratio
from .bodies import json_response
from .keys import authorised_site
from .results import SampleRatioCheck

if TYPE_CHECKING:
    from ..rules import CompiledSite
    from ..runtime import Runtime

__all__ = ["Group", "HoldoutResults", "holdout_endpoint", "holdout_results"]

Interval = tuple[float, float]


class Group(msgspec.Struct, frozen=True):
    visitors: int
    conversions: int  # visitors who reached a goal at or after their first decision
    rate: float  # conversions per visitor


class HoldoutResults(msgspec.Struct, frozen=True):
    """The held-out visitors against the personalised ones, and the uplift with its 95%
    intervals and p-value (null until both groups have visitors)."""

    site: str
    share: float  # the configured holdout
    goals: list[str]
    confidence: float
    holdout: Group
    personalised: Group
    uplift: float | None  # absolute: personalised rate - holdout rate
    uplift_ci: Interval | None
    relative_uplift: float | None
    relative_uplift_ci: Interval | None
    p_value: float | None
    sample_ratio: SampleRatioCheck


async def holdout_results(runtime: Runtime, site: CompiledSite, goals: list[str]) -> HoldoutResults:
    counted = {g.group: g for g in await runtime.store.holdout_results(site.name, goals)}
    held, given = counted.get("holdout"), counted.get("personalised")
    baseline = (held.conversions, held.visitors) if held else (0, 0)
    mine = (given.conversions, given.visitors) if given else (0, 0)
    versus = compare(baseline, mine)
    share = site.config.holdout
    srm = sample_ratio([baseline[1], mine[1]], [share, 1 - share])
    both = bool(baseline[1] and mine[1])
    return HoldoutResults(
        site=site.name,
        share=share,
        goals=goals,
        confidence=0.95,
        holdout=Group(baseline[1], baseline[0], baseline[0] / baseline[1] if baseline[1] else 0.0),
        personalised=Group(mine[1], mine[0], versus.rate),
        uplift=versus.uplift if both else None,
        uplift_ci=versus.uplift_ci,
        relative_uplift=versus.relative,
        relative_uplift_ci=versus.relative_ci,
        p_value=versus.p_value,
        sample_ratio=SampleRatioCheck(srm.chi2, srm.p_value, srm.mismatch),
    )


async def holdout_endpoint(request: Request) -> Response:
    runtime, site = await authorised_site(request, "of the holdout")
    goal = request.query_params.get("goal")
    if goal is not None and goal not in site.goals:
        declared = ", ".join(site.goals) or "none are declared"
        raise NotFound(f"goal: site '{site.name}' has no rule with goal '{goal}' ({declared})")
    goals = [goal] if goal is not None else list(site.goals)
    return json_response(await holdout_results(runtime, site, goals))
