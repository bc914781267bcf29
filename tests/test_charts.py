"""The report chart's geometry: each axis scaled to its data with nice ticks, lines broken
(not dropped to 0) on days without visitors, and sane output for no data, one day and
counts in the billions."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sitecue.charts import Line, count_label, daily_chart, nice_ticks, rate_labels

OCT = [date(2026, 10, 1) + timedelta(days=i) for i in range(30)]


def test_a_rate_under_one_percent_is_drawn_on_a_0_to_1_2_percent_axis() -> None:
    ticks = nice_ticks(0.01)
    assert ticks == [0, 0.002, 0.004, 0.006, 0.008, 0.01, 0.012]
    assert rate_labels(ticks) == ["0%", "0.2%", "0.4%", "0.6%", "0.8%", "1.0%", "1.2%"]
    assert nice_ticks(0.0095)[-1] == 0.01
    assert rate_labels(nice_ticks(0.0011)) == ["0%", "0.025%", "0.050%", "0.075%", "0.100%",
                                               "0.125%"]  # fmt: skip
    assert rate_labels(nice_ticks(0.12))[-1] == "12.5%"
    assert nice_ticks(1.0)[-1] == 1 and nice_ticks(0.99)[-1] == 1


@given(st.floats(min_value=1e-7, max_value=1e12), st.booleans())
def test_ticks_are_nice_and_the_top_is_just_above_the_largest_value(
    largest: float, whole: bool
) -> None:
    ticks = nice_ticks(largest, whole)
    step = ticks[1]
    assert ticks[0] == 0 and ticks[-2] <= largest * (1 + 1e-9)
    assert ticks[-1] > largest or (not whole and ticks[-1] == 1 and largest <= 1)
    assert len(ticks) - 1 <= 12 and (len(ticks) - 1 >= 3 or (whole and largest < 5))
    mantissa = step / 10 ** int(f"{step:e}".split("e")[1])
    assert round(mantissa, 9) in ((1, 2, 5) if whole else (1, 2, 2.5, 5))
    assert all(abs(t - i * step) <= 1e-9 * step * i for i, t in enumerate(ticks))
    if whole:
        assert all(t == int(t) for t in ticks)


def test_counts_are_labelled_compactly() -> None:
    assert [count_label(v) for v in nice_ticks(1_234_567, whole=True)] == [
        "0", "500k", "1M", "1.5M"
    ]  # fmt: skip
    assert [count_label(v) for v in nice_ticks(7, whole=True)] == ["0", "2", "4", "6", "8"]
    assert nice_ticks(0.4, whole=True) == [0, 1]  # never a fraction of an impression


def test_points_sit_on_their_scale_and_a_day_without_visitors_breaks_the_line() -> None:
    chart = daily_chart(
        OCT[:4],
        impressions=[500, 0, 250, 1000],
        lines=[Line("rate", [0.004, None, 0.0, 0.01])],
    )
    [line] = chart.lines
    assert line.path.count("M") == 2  # two stretches: day 2 has no rate, it is no 0
    assert [p.title for p in line.points] == [
        "2026-10-01: 0.40%", "2026-10-03: 0.00%", "2026-10-04: 1.00%"
    ]  # fmt: skip
    span = chart.bottom - chart.top
    ys = [p.y for p in line.points]
    # On a 0–1.2% axis: 0.4% a third of the way up, 1% at five sixths, a real 0 on the axis.
    assert ys == pytest.approx(
        [chart.bottom - span / 3, chart.bottom, chart.bottom - span * 5 / 6], abs=0.1
    )
    assert chart.rate_ticks[-1].label == "1.2%" and chart.rate_ticks[-1].at == chart.top
    # Bars: 1000 on a 0–1200 axis; the day with none has no bar.
    assert [b.title for b in chart.bars] == [
        "2026-10-01: 500 impressions", "2026-10-03: 250 impressions",
        "2026-10-04: 1,000 impressions",
    ]  # fmt: skip
    assert chart.bars[-1].height == pytest.approx(span * 1000 / 1200, abs=0.01)
    assert chart.count_ticks[-1].label == "1.2k"
    assert all(chart.left <= b.x and b.x + b.width <= chart.right for b in chart.bars)


def test_an_experiment_has_a_band_per_variant_and_the_axis_covers_its_latest_interval() -> None:
    chart = daily_chart(
        OCT[:3],
        impressions=[10, 10, 10],
        lines=[
            Line("faq", [0.02, 0.03, 0.025], [(0.01, 0.09), (0.02, 0.04), (0.02, 0.031)]),
            Line("control", [0.01, 0.01, 0.01], [(0, 0.02)] * 3, control=True),
        ],
    )
    # Above the lines and the latest intervals; the first day's wider band is clipped.
    assert chart.rate_ticks[-1].label == "4%"
    faq, control = chart.lines
    assert faq.band.count("Z") == 1 and control.color == "#555555" != faq.color
    ys = [float(y) for y in re.findall(r",([\d.]+)", faq.band)]
    assert all(chart.top <= y <= chart.bottom for y in ys)
    assert [entry.label for entry in chart.legend] == [
        "impressions",
        "faq",
        "control",
        "95% interval",
    ]


def test_no_data_draws_empty_axes() -> None:
    chart = daily_chart(
        OCT,
        impressions=[0] * 30,
        lines=[Line("a", [None] * 30), Line("b", [None] * 30, [None] * 30)],
    )
    assert chart.empty and chart.bars == [] and chart.lines[1].points == []
    assert chart.lines[1].path == "" and chart.lines[1].band == ""
    assert [t.label for t in chart.count_ticks] == ["0", "1", "2"]
    assert chart.rate_ticks[-1].label == "1.2%"
    assert not daily_chart(OCT[:1], [0], [Line("rate", [0.0])]).empty  # a real 0% is data


def test_one_day() -> None:
    chart = daily_chart(
        OCT[:1], impressions=[42], lines=[Line("a", [0.5], [(0.4, 0.6)]), Line("b", [None])]
    )
    [bar] = chart.bars
    assert bar.x + bar.width / 2 == pytest.approx((chart.left + chart.right) / 2)
    [point] = chart.lines[0].points
    assert point.x == pytest.approx((chart.left + chart.right) / 2)
    assert chart.lines[0].band.count("L") == 3  # a rectangle as wide as the bar
    assert [t.label for t in chart.day_ticks] == ["Oct 1"]


def test_huge_numbers_stay_in_the_frame() -> None:
    chart = daily_chart(
        OCT[:2], impressions=[3_000_000_000, 1_000_000_000_000], lines=[Line("r", [1e-7, 1.0])]
    )
    assert [t.label for t in chart.count_ticks] == ["0", "200B", "400B", "600B", "800B",
                                                   "1T", "1.2T"]  # fmt: skip
    assert all(chart.top <= b.y <= chart.bottom and b.height >= 0 for b in chart.bars)
    assert chart.bars[0].height == pytest.approx(180 * 3e9 / 1.2e12, abs=0.01)
    # A rate of 100% (one visitor, one conversion) tops a 0–100% axis, not a 0–120% one.
    assert chart.rate_ticks[-1].label == "100%" and chart.lines[0].points[1].y == chart.top
    assert count_label(987_654_321_000_000) == "988T"


def test_thirty_days_get_at_most_seven_date_labels_and_the_legend_wraps() -> None:
    chart = daily_chart(OCT, [1] * 30, [Line(f"variant-number-{i}", [0.1] * 30) for i in range(8)])
    assert [t.label for t in chart.day_ticks] == ["Oct 1", "Oct 6", "Oct 11", "Oct 16",
                                                 "Oct 21", "Oct 26"]  # fmt: skip
    rows = sorted({entry.y for entry in chart.legend})
    assert len(rows) > 1 and chart.top > 52  # the plot moved down to make room
    assert all(entry.x + 100 < chart.width for entry in chart.legend)
