"""Geometry of the dashboard's daily report chart: impressions as bars against the left axis,
conversion rates as lines (with a band, for an experiment's 95% intervals) against the
right axis, one slot per day. Pure arithmetic on numbers: the template only draws what this
returns, as inline SVG (no script, no external asset: the dashboard's CSP stays strict).

Each axis is scaled to its data with "nice" ticks (steps of 1, 2, 2.5 or 5 times a power of
ten) and a top tick strictly above the largest value, so a 0–1% rate is drawn on a 0–1.2%
axis, not on 0–100%, and the highest point never touches the frame. A day without
visitors has no rate: its line is broken there rather than dropped to 0. An interval band
is scaled by its latest interval: the wide bands of an experiment's first days are clipped
at the top rather than squashing every line to the bottom.

Example::

    chart = daily_chart(
        [date(2026, 10, 1), date(2026, 10, 2)],
        impressions=[120, 80],
        lines=[Line("conversion rate", [0.02, None])],
    )
    chart.bars[0].height, chart.rate_ticks[-1].label  # (..., '2.5%')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

__all__ = [
    "Bar",
    "Chart",
    "Legend",
    "Line",
    "Plotted",
    "Tick",
    "count_label",
    "daily_chart",
    "nice_ticks",
    "rate_labels",
]

WIDTH = 720
LEFT, RIGHT = 64, 656  # the plot area's x range: room for each axis's tick labels
TOP, BOTTOM = 52, 232  # the plot area's y range: room above for the legend and axis titles
HEIGHT = 262
LEGEND_LINE = 16  # px between the legend's rows
CHAR_PX = 6.6  # average width of a 12 px system-ui character, to lay out the legend
PALETTE = ("#1f5fbf", "#b5541b", "#7a3db8", "#0a7f86", "#a3195b", "#5c6b00")
CONTROL = "#555555"
BARS = "#c9d3de"
TICKS = 5  # about this many intervals on each axis
X_LABELS = 7  # at most this many day labels


@dataclass(frozen=True)
class Line:
    """One conversion rate to draw: a value per day (None: no visitors, no point), and
    optionally its interval per day (drawn as a band). ``control`` draws it in grey."""

    label: str
    values: Sequence[float | None]
    band: Sequence[tuple[float, float] | None] | None = None
    control: bool = False


@dataclass(frozen=True)
class Tick:
    at: float  # x or y, in px
    label: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str  # the day and its count, shown on hover and read by screen readers


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    title: str


@dataclass(frozen=True)
class Plotted:
    """A Line in px: its path (broken where a day has no value), its points, and its band's
    outline (one closed path per unbroken stretch)."""

    label: str
    color: str
    path: str
    points: list[Point]
    band: str


@dataclass(frozen=True)
class Legend:
    x: float
    y: float
    label: str
    kind: str  # "bar", "line" or "band"
    color: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    bars: list[Bar]
    lines: list[Plotted]
    count_ticks: list[Tick]  # left axis: impressions
    rate_ticks: list[Tick]  # right axis: conversion rate
    day_ticks: list[Tick]
    legend: list[Legend]
    empty: bool  # nothing at all to draw: the template says so in the plot area


def nice_ticks(largest: float, whole: bool = False) -> list[float]:
    """Tick values from 0 to just above ``largest``, in nice steps; ``whole``: counts, so
    steps of at least 1 and never 2.5; otherwise rates, whose axis stops at 100% (a rate of
    100% is on the frame, not under a 120% that no rate reaches). With nothing to show
    (``largest`` <= 0) the axis is 0–2 for counts and 0–1.2% for rates."""
    if not largest > 0 or not math.isfinite(largest):
        largest = 1.0 if whole else 0.01
    raw = largest / TICKS
    magnitude = 10 ** math.floor(math.log10(raw))
    steps = (1, 2, 5, 10) if whole else (1, 2, 2.5, 5, 10)
    step = next(m * magnitude for m in steps if m * magnitude >= raw * (1 - 1e-9))
    if whole:
        step = max(1.0, round(step))
    # Strictly above the largest value: the top point keeps a margin from the frame.
    count = math.floor(largest / step + 1e-9) + 1
    ticks = [_clean(i * step) for i in range(count + 1)]
    return ticks if whole or largest > 1 else [t for t in ticks if t <= 1]


def _clean(value: float) -> float:
    """``value`` without the float noise of multiplying a step (0.006000000000000001)."""
    return float(f"{value:.12g}")


def _decimals(values: Sequence[float]) -> int:
    """The fewest decimals that write every value exactly."""
    for decimals in range(8):
        if all(abs(round(v, decimals) - v) < 1e-9 * max(1.0, abs(v)) for v in values):
            return decimals
    return 8


def count_label(value: float) -> str:
    """A count on an axis, compact: 750, 12k, 2.5M, 1.2B."""
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.0f}"


def rate_labels(ticks: Sequence[float]) -> list[str]:
    """Rates as percentages, all with the decimals the finest one needs (0.25% → 2)."""
    percents = [t * 100 for t in ticks]
    decimals = _decimals(percents)
    return [f"{p:.{decimals}f}%" if p else "0%" for p in percents]


def _legend(entries: list[tuple[str, str, str]]) -> tuple[list[Legend], int]:
    """The legend laid out left to right, wrapping at the plot's width; and how many rows."""
    placed, x, row = [], float(LEFT), 0
    for label, kind, color in entries:
        width = 22 + len(label) * CHAR_PX + 18
        if x + width > WIDTH - 8 and x > LEFT:
            x, row = float(LEFT), row + 1
        placed.append(Legend(x, 14 + row * LEGEND_LINE, label, kind, color))
        x += width
    return placed, row + 1


def _segments(ys: Sequence[float | None]) -> list[list[int]]:
    """Runs of consecutive days that have a value."""
    runs: list[list[int]] = []
    for i, y in enumerate(ys):
        if y is None:
            continue
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def daily_chart(
    days: Sequence[date],
    impressions: Sequence[int],
    lines: Sequence[Line],
) -> Chart:
    """The chart of ``days`` (one slot each, oldest first): a bar per day of
    ``impressions``, and each of ``lines`` over the same days."""
    n = max(1, len(days))
    slot = (RIGHT - LEFT) / n
    entries = [("impressions", "bar", BARS)]
    colors = []
    for i, line in enumerate(lines):
        color = CONTROL if line.control else PALETTE[i % len(PALETTE)]
        colors.append(color)
        entries.append((line.label, "line", color))
    if any(line.band is not None for line in lines):
        entries.append(("95% interval", "band", "#888888"))
    legend, rows = _legend(entries)
    top = TOP + (rows - 1) * LEGEND_LINE
    height = HEIGHT + (rows - 1) * LEGEND_LINE
    bottom = BOTTOM + (rows - 1) * LEGEND_LINE
    span = bottom - top

    counts = nice_ticks(max(impressions, default=0), whole=True)
    rates_seen = [v for line in lines for v in line.values if v is not None]
    # A band's latest interval, not its first days' (wide on a handful of visitors): they
    # would squash the lines to the bottom. Earlier bands wider than the axis are clipped.
    latest = [next((b for b in reversed(line.band or ()) if b is not None), None) for line in lines]
    rates_seen += [b[1] for b in latest if b is not None]
    rates = nice_ticks(max(rates_seen, default=0.0))

    def y_count(value: float) -> float:
        return bottom - span * value / counts[-1]

    def y_rate(value: float) -> float:
        return bottom - span * min(value, rates[-1]) / rates[-1]

    def x_day(i: int) -> float:
        return LEFT + slot * (i + 0.5)

    bars = []
    for i, (day, count) in enumerate(zip(days, impressions, strict=True)):
        if count > 0:
            y = y_count(count)
            bars.append(
                Bar(
                    round(LEFT + slot * (i + 0.15), 2),
                    round(y, 2),
                    round(slot * 0.7, 2),
                    round(bottom - y, 2),
                    f"{day.isoformat()}: {count:,} impressions",
                )
            )

    plotted = []
    for line, color in zip(lines, colors, strict=True):
        path, band, points = [], [], []
        for run in _segments(line.values):
            coords = [(x_day(i), y_rate(line.values[i] or 0.0)) for i in run]
            path.append("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in coords))
            for i, (x, y) in zip(run, coords, strict=True):
                value = line.values[i] or 0.0
                points.append(Point(round(x, 1), round(y, 1), f"{days[i]}: {value * 100:.2f}%"))
            if line.band is not None:
                known = [i for i in run if line.band[i] is not None]
                if known:
                    upper = [(x_day(i), y_rate(line.band[i][1])) for i in known]  # type: ignore[index]
                    lower = [(x_day(i), y_rate(line.band[i][0])) for i in reversed(known)]  # type: ignore[index]
                    if len(known) == 1:  # one day: a band as wide as its bar
                        (x, hi), (_, lo) = upper[0], lower[0]
                        upper = [(x - slot * 0.35, hi), (x + slot * 0.35, hi)]
                        lower = [(x + slot * 0.35, lo), (x - slot * 0.35, lo)]
                    outline = upper + lower
                    band.append("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in outline) + " Z")
        plotted.append(Plotted(line.label, color, " ".join(path), points, " ".join(band)))

    every = max(1, math.ceil(n / X_LABELS))
    day_ticks = [
        Tick(round(x_day(i), 1), f"{day:%b} {day.day}")
        for i, day in enumerate(days)
        if i % every == 0
    ]
    return Chart(
        width=WIDTH,
        height=height,
        left=LEFT,
        right=RIGHT,
        top=top,
        bottom=bottom,
        bars=bars,
        lines=plotted,
        count_ticks=[Tick(round(y_count(v), 1), count_label(v)) for v in counts],
        rate_ticks=[
            Tick(round(y_rate(v), 1), label)
            for v, label in zip(rates, rate_labels(rates), strict=True)
        ],
        day_ticks=day_ticks,
        legend=legend,
        empty=not bars and not rates_seen,
    )
