"""The dashboard's report panel of one rule: its daily chart and its totals over a period,
read from the store's daily rollups (one query per rule, however many decisions).

The chart shows the impressions of each day as bars and, against a second axis, the
conversion rate: for a rule with one variant, of each day's newly exposed visitors; for an
experiment (more than one variant, or a control), each variant's rate to date over the
period with its 95% interval as a band, which narrows as visitors come in, so whether the
variants have separated reads at a glance. Conversions count on the day of the visitor's
first exposure (the rollups' cohort day), so no day's rate exceeds 100%.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from .api.reports import day_number
from .charts import Chart, Line, daily_chart
from .rules import CompiledRule
from .stats import rate_interval
from .store import DayCounts

__all__ = ["Panel", "Totals", "panel", "today"]


def today() -> date:
    """The current UTC date (tests freeze it)."""
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class Totals:
    """One variant's counts over the period (or every variant's: ``variant`` None)."""

    variant: str | None
    decisions: int
    visitors: int
    impressions: int
    clicks: int
    dismissals: int
    submissions: int
    conversions: int
    revenue: float

    @property
    def ctr(self) -> float | None:
        return self.clicks / self.impressions if self.impressions else None

    @property
    def conversion_rate(self) -> float | None:
        return self.conversions / self.visitors if self.visitors else None

    @property
    def revenue_per_visitor(self) -> float | None:
        return self.revenue / self.visitors if self.visitors else None


def _sum(variant: str | None, rows: list[DayCounts]) -> Totals:
    return Totals(
        variant,
        sum(r.decisions for r in rows),
        sum(r.visitors for r in rows),
        sum(r.impressions for r in rows),
        sum(r.clicks for r in rows),
        sum(r.dismissals for r in rows),
        sum(r.submissions for r in rows),
        sum(r.conversions for r in rows),
        sum(r.revenue for r in rows),
    )


@dataclass(frozen=True)
class Panel:
    rule: str
    goal: str | None
    experiment: bool
    since: date
    until: date  # inclusive
    chart: Chart
    totals: list[Totals]  # per variant; then all of them (variant None) when more than one
    rate_title: str  # what the right axis measures
    description: str  # the chart in a sentence, for screen readers


def is_experiment(rule: CompiledRule) -> bool:
    """More than one variant, or a control (a variant that shows nothing)."""
    return len(rule.variants) > 1 or any(v.widget is None for v in rule.variants)


def panel(rule: CompiledRule, rows: list[DayCounts], since: date, until: date) -> Panel:
    """The panel of ``rule`` from its rollup ``rows`` of the days ``since`` to ``until``
    (inclusive; rows outside are ignored)."""
    days = [since + timedelta(days=i) for i in range((until - since).days + 1)]
    first = day_number(since)
    index = {d: i for i, d in enumerate(range(first, first + len(days)))}
    rows = [r for r in rows if r.day in index]
    # The rule's variants as configured, then any the data still has (since removed).
    variants = [v.id for v in rule.variants]
    variants += sorted({r.variant for r in rows} - set(variants))
    controls = {v.id for v in rule.variants if v.widget is None}
    experiment = is_experiment(rule)

    impressions = [0] * len(days)
    by_variant: dict[str, list[list[int]]] = {v: [[0, 0] for _ in days] for v in variants}
    for r in rows:
        impressions[index[r.day]] += r.impressions
        cell = by_variant[r.variant][index[r.day]]
        cell[0] += r.conversions
        cell[1] += r.visitors

    lines = []
    if experiment:
        for variant in variants:
            values: list[float | None] = []
            band: list[tuple[float, float] | None] = []
            conversions = visitors = 0
            for c, n in by_variant[variant]:
                conversions, visitors = conversions + c, visitors + n
                values.append(conversions / visitors if visitors else None)
                band.append(rate_interval(conversions, visitors) if visitors else None)
            lines.append(Line(variant, values, band, control=variant in controls))
        rate_title = "conversion rate to date"
    else:
        daily = [
            sum(by_variant[v][i][0] for v in variants) / n
            if (n := sum(by_variant[v][i][1] for v in variants))
            else None
            for i in range(len(days))
        ]
        lines.append(Line("conversion rate", daily))
        rate_title = "conversion rate of the day's new visitors"

    totals = [_sum(v, [r for r in rows if r.variant == v]) for v in variants]
    if len(totals) > 1:
        totals.append(_sum(None, rows))
    whole = totals[-1]
    rate = f"{whole.conversion_rate:.2%}" if whole.conversion_rate is not None else "no rate"
    description = (
        f"Impressions per day (bars) and {rate_title}"
        f"{' per variant with its 95% interval' if experiment else ''} (lines) of rule"
        f" {rule.id}, {since.isoformat()} to {until.isoformat()} (UTC):"
        f" {whole.impressions:,} impressions, {whole.visitors:,} visitors,"
        f" {whole.conversions:,} conversions ({rate})."
    )
    return Panel(
        rule=rule.id,
        goal=rule.rule.goal,
        experiment=experiment,
        since=since,
        until=until,
        chart=daily_chart(days, impressions, lines),
        totals=totals,
        rate_title=rate_title,
        description=description,
    )
