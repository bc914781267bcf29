"""``GET /v1/reports?site=…&rule=…``: a rule's numbers per day or ISO week, from the rollups.

One row per period and variant (every period of the range, zeros included; every variant of
the rule's current config, and any other the data still holds): decisions, visitors first
exposed, impressions, clicks, dismissals, form submissions, conversions and revenue of
those visitors, and the click-through rate, conversion rate and revenue per visitor. A few
rows a day whatever the traffic, so a 400-day report costs the same at any size.

``from`` and ``to`` are UTC dates (``to`` included; the last 30 days by default, at most
400); ``interval=week`` widens them to whole ISO weeks, Monday to Sunday. As JSON, or with
``format=csv`` / ``format=ndjson`` (or ``Accept: text/csv`` / ``application/x-ndjson``) one
row per line, for a spreadsheet or a pipeline.

Where the rule's widgets recommend products, the report also breaks recommendation clicks,
the purchases they led to and their revenue down by strategy, per period and variant
(``strategies`` in JSON; ``breakdown=strategy`` makes the CSV and NDJSON rows these), read
from the strategy rollups: a few rows a day and strategy, however many products.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ..attribution import strategy_results, summed
from ..errors import BadRequest, NotFound
from ..store import DayCounts, StrategyDay
from .bodies import json_response
from .keys import authorised_site

if TYPE_CHECKING:
    from ..rules import CompiledRule, CompiledSite
    from ..runtime import Runtime

__all__ = [
    "COLUMNS",
    "DEFAULT_DAYS",
    "MAX_DAYS",
    "STRATEGY_COLUMNS",
    "Interval",
    "Report",
    "ReportRow",
    "StrategyRow",
    "build_rows",
    "build_strategy_rows",
    "csv_rows",
    "day_number",
    "report_rows",
    "reports_endpoint",
    "strategy_rows",
    "totals",
]

Interval = Literal["day", "week"]
INTERVALS: tuple[Interval, ...] = ("day", "week")
FORMATS = ("json", "csv", "ndjson")
BREAKDOWNS = ("variant", "strategy")
MAX_DAYS = 400
DEFAULT_DAYS = 30
_EPOCH = date(1970, 1, 1).toordinal()  # day number 0
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9999, 12, 24)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_encode = msgspec.json.Encoder().encode


class ReportRow(msgspec.Struct, frozen=True):
    """One variant in one period. Rates are null where their denominator is 0."""

    period: str  # the period's first day, YYYY-MM-DD (a Monday for weeks)
    variant: str
    decisions: int  # decisions whose verdict for the rule matched (the control too)
    visitors: int  # first exposed in the period (the cohort)
    impressions: int
    clicks: int
    dismissals: int
    submissions: int  # form submissions
    conversions: int  # of the period's cohort, whenever they converted
    revenue: float  # goal-event values of the period's cohort
    ctr: float | None  # clicks / impressions
    conversion_rate: float | None  # conversions / visitors
    revenue_per_visitor: float | None  # revenue / visitors


COLUMNS = tuple(ReportRow.__struct_fields__)


class StrategyRow(msgspec.Struct, frozen=True):
    """One strategy of one variant in one period: the clicks on the products it recommended
    that period, and of those clicks the ones a purchase followed, with their revenue.
    Rates are null where no product was clicked."""

    period: str
    variant: str
    strategy: str
    clicks: int
    conversions: int
    revenue: float
    conversion_rate: float | None  # conversions / clicks
    revenue_per_click: float | None  # revenue / clicks


STRATEGY_COLUMNS = tuple(StrategyRow.__struct_fields__)


class Report(msgspec.Struct, frozen=True):
    site: str
    rule: str
    since: str = msgspec.field(name="from")  # the first day covered, YYYY-MM-DD
    until: str = msgspec.field(name="to")  # the last day covered (included)
    interval: Interval = "day"
    variants: list[str] = msgspec.field(default_factory=list)
    rows: list[ReportRow] = msgspec.field(default_factory=list)
    # Per period, variant and strategy (rules whose widgets recommend products).
    strategies: list[StrategyRow] = msgspec.field(default_factory=list)


def _now_ms() -> int:
    """Epoch ms (tests freeze it)."""
    return time.time_ns() // 1_000_000


def day_number(day: date) -> int:
    """The UTC day number of ``day`` (epoch ms // DAY_MS at any time of it)."""
    return day.toordinal() - _EPOCH


def covered(since: date, until: date, interval: Interval) -> tuple[date, date]:
    """The days a report of [since, until] covers: for weeks, widened to whole ISO weeks."""
    if interval == "week":
        return since - timedelta(days=since.weekday()), until + timedelta(days=6 - until.weekday())
    return since, until


def _variants(rule: CompiledRule, counts: Iterable[DayCounts]) -> list[str]:
    """The rule's variants as configured, then any others the data holds (a variant since
    removed from the config still has its history), by name."""
    mine = [v.id for v in rule.variants]
    return mine + sorted({c.variant for c in counts} - set(mine))


def _ratio(part: float, whole: int) -> float | None:
    return part / whole if whole else None


def _row(period: date, variant: str, sums: Sequence[float]) -> ReportRow:
    decisions, visitors, impressions, clicks, dismissals, submissions, conversions = map(
        int, sums[:7]
    )
    revenue = sums[7]
    return ReportRow(
        period.isoformat(),
        variant,
        decisions,
        visitors,
        impressions,
        clicks,
        dismissals,
        submissions,
        conversions,
        revenue,
        _ratio(clicks, impressions),
        _ratio(conversions, visitors),
        _ratio(revenue, visitors),
    )


def _sums(c: DayCounts | ReportRow) -> tuple[float, ...]:
    return (c.decisions, c.visitors, c.impressions, c.clicks, c.dismissals, c.submissions,
            c.conversions, c.revenue)  # fmt: skip


def build_rows(
    counts: Iterable[DayCounts],
    variants: Sequence[str],
    since: date,
    until: date,
    interval: Interval,
) -> list[ReportRow]:
    """The rows of [since, until] (already ``covered``): per period (oldest first) and
    variant (in the order given), summed over the period's days; zeros where nothing was
    counted. Days outside the range are ignored."""
    step = 7 if interval == "week" else 1
    first, last = day_number(since), day_number(until)
    periods = (last - first) // step + 1
    table = {(p, v): [0.0] * 8 for p in range(periods) for v in variants}
    for c in counts:
        if first <= c.day <= last and (cell := table.get(((c.day - first) // step, c.variant))):
            for i, value in enumerate(_sums(c)):
                cell[i] += value
    return [
        _row(since + timedelta(days=p * step), v, table[p, v])
        for p in range(periods)
        for v in variants
    ]


def totals(rows: Iterable[ReportRow], variants: Sequence[str], since: date) -> list[ReportRow]:
    """Per variant, the sum of its rows over the whole range (labelled with its first
    day); the rates recomputed from the sums."""
    sums = {v: [0.0] * 8 for v in variants}
    for r in rows:
        cell = sums.setdefault(r.variant, [0.0] * 8)
        for i, value in enumerate(_sums(r)):
            cell[i] += value
    return [_row(since, v, s) for v, s in sums.items()]


async def report_rows(
    runtime: Runtime,
    site: CompiledSite,
    rule: CompiledRule,
    since: date,
    until: date,
    interval: Interval = "day",
) -> list[ReportRow]:
    """The rows of ``rule``'s report from ``since`` to ``until`` (both included; widened to
    whole ISO weeks for ``week``), read from the rollups in one query."""
    since, until = covered(since, until, interval)
    counts = await runtime.store.report(
        site.name, rule.id, day_number(since), day_number(until) + 1
    )
    return build_rows(counts, _variants(rule, counts), since, until, interval)


def build_strategy_rows(
    days: Iterable[StrategyDay],
    pairs: Sequence[tuple[str, str]],
    since: date,
    until: date,
    interval: Interval,
) -> list[StrategyRow]:
    """The strategy rows of [since, until] (already ``covered``): per period (oldest first)
    and (variant, strategy) of ``pairs`` (in that order), summed over the period's days;
    zeros where nothing was counted."""
    step = 7 if interval == "week" else 1
    first, last = day_number(since), day_number(until)
    periods = (last - first) // step + 1
    table = {(p, pair): [0.0, 0.0, 0.0] for p in range(periods) for pair in pairs}
    for d in days:
        cell = table.get(((d.day - first) // step, (d.variant, d.strategy)))
        if first <= d.day <= last and cell is not None:
            cell[0] += d.clicks
            cell[1] += d.conversions
            cell[2] += d.revenue
    rows = []
    for p in range(periods):
        for variant, strategy in pairs:
            clicks, conversions, revenue = table[p, (variant, strategy)]
            rows.append(
                StrategyRow(
                    (since + timedelta(days=p * step)).isoformat(),
                    variant,
                    strategy,
                    int(clicks),
                    int(conversions),
                    revenue,
                    _ratio(conversions, int(clicks)),
                    _ratio(revenue, int(clicks)),
                )
            )
    return rows


async def strategy_rows(
    runtime: Runtime,
    site: CompiledSite,
    rule: CompiledRule,
    since: date,
    until: date,
    interval: Interval = "day",
) -> list[StrategyRow]:
    """The strategy rows of ``rule``'s report (see build_strategy_rows), read from the
    strategy rollups in one query: each variant's configured strategies, then any other
    the period holds."""
    since, until = covered(since, until, interval)
    days = await runtime.store.strategy_report(
        site.name, rule.id, day_number(since), day_number(until) + 1
    )
    pairs = [(r.variant, r.strategy) for r in strategy_results(site, rule, summed(days))]
    return build_strategy_rows(days, pairs, since, until, interval)


def _cell(value: object) -> str:
    # Numbers, dates and variant ids, which the config's id pattern starts with a letter or
    # digit: nothing a spreadsheet would run as a formula (a negative revenue stays a number).
    return "" if value is None else str(value)


def csv_rows(
    rows: Iterable[ReportRow | StrategyRow],
    header: bool = True,
    columns: Sequence[str] = COLUMNS,
) -> bytes:
    """Rows as CSV (a header line of ``columns`` first: COLUMNS, or STRATEGY_COLUMNS for
    strategy rows); a rate without a denominator is an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(getattr(row, name)) for name in columns])
    return out.getvalue().encode()


def breakdown(params: Mapping[str, str]) -> str:
    """``breakdown``: ``variant`` (the default) or ``strategy``; a bad one is a 400."""
    chosen = params.get("breakdown", "variant")
    if chosen not in BREAKDOWNS:
        raise BadRequest(f"breakdown: expected variant or strategy, got {chosen!r}")
    return chosen


def rule_of(site: CompiledSite, params: Mapping[str, str], what: str) -> CompiledRule:
    """The site's rule that ``rule`` names: a 400 without one, a 404 for one it lacks."""
    rule_id = params.get("rule")
    if not rule_id:
        raise BadRequest(f"rule: expected the id of the rule {what}")
    rule = next((r for r in site.rules if r.id == rule_id), None)
    if rule is None:
        raise NotFound(f"rule: site '{site.name}' has no rule '{rule_id}'")
    return rule


def _date(params: Mapping[str, str], name: str) -> date | None:
    text = params.get(name)
    if text is None:
        return None
    try:
        if not _DATE.fullmatch(text):
            raise ValueError
        day = date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name}: expected a date as YYYY-MM-DD, got {text!r}") from None
    if not FIRST_DAY <= day <= LAST_DAY:  # room for a default range and whole weeks around it
        raise BadRequest(f"{name}: expected a date from {FIRST_DAY} to {LAST_DAY}, got {text!r}")
    return day


def parse_range(
    params: Mapping[str, str], today: date, names: tuple[str, str] = ("from", "to")
) -> tuple[date, date, Interval]:
    """``from``, ``to`` (or the two ``names`` given) and ``interval`` of the query; a bad
    one is a 400 that names it."""
    first, last = names
    interval = params.get("interval", "day")
    if interval not in INTERVALS:
        raise BadRequest(f"interval: expected day or week, got {interval!r}")
    until = _date(params, last) or today
    since = _date(params, first) or until - timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        raise BadRequest(f"{first}: expected a date on or before {last} ({until}), got '{since}'")
    days = (until - since).days + 1
    if days > MAX_DAYS:
        raise BadRequest(f"{last}: expected at most {MAX_DAYS} days from '{first}', got {days}")
    return since, until, interval


def _format(request: Request) -> str:
    chosen = request.query_params.get("format")
    if chosen is not None:
        if chosen not in FORMATS:
            raise BadRequest(f"format: expected json, csv or ndjson, got {chosen!r}")
        return chosen
    accept = request.headers.get("accept", "")
    return (
        "ndjson" if "application/x-ndjson" in accept else "csv" if "text/csv" in accept else "json"
    )


async def reports_endpoint(request: Request) -> Response:
    runtime, site = await authorised_site(request, "of the report")
    params = request.query_params
    rule = rule_of(site, params, "to report on")
    today = datetime.fromtimestamp(_now_ms() / 1000, UTC).date()
    since, until, interval = parse_range(params, today)
    kind = _format(request)  # before the read: a bad format costs no query
    by = breakdown(params)
    since, until = covered(since, until, interval)
    strategies = (
        await strategy_rows(runtime, site, rule, since, until, interval)
        if by == "strategy" or kind == "json"
        else []
    )
    if by == "strategy" and kind != "json":
        lines: Sequence[ReportRow | StrategyRow] = strategies
        columns: Sequence[str] = STRATEGY_COLUMNS
        suffix = "-strategies"
    else:
        lines = rows = await report_rows(runtime, site, rule, since, until, interval)
        columns, suffix = COLUMNS, ""
    if kind == "csv":
        name = f"{site.name}-{rule.id}-{since}-{until}{suffix}.csv"
        return Response(
            csv_rows(lines, columns=columns),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )
    if kind == "ndjson":
        return Response(
            b"".join(_encode(row) + b"\n" for row in lines), media_type="application/x-ndjson"
        )
    variants = list(dict.fromkeys(r.variant for r in rows))
    return json_response(
        Report(
            site.name,
            rule.id,
            since.isoformat(),
            until.isoformat(),
            interval,
            variants,
            rows,
            strategies,
        )
    )
