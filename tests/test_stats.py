"""Experiment statistics against SciPy (a test dependency only) on fixed data and on random
counts."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats as sp

from sitecue.stats import (
    SERIES_DF,
    Moments,
    chi2_sf,
    compare,
    compare_means,
    normal_quantile,
    rate_interval,
    sample_ratio,
    t_quantile,
    t_sf,
)

# (control conversions, control exposed, variant conversions, variant exposed)
FIXED = [(120, 2400, 156, 2380), (30, 1000, 30, 1000), (5, 80, 19, 90), (480, 9600, 401, 9580)]


def scipy_compare(c0: int, n0: int, c1: int, n1: int) -> dict[str, object]:
    """The same methods, computed with SciPy's distributions."""
    p0, p1 = c0 / n0, c1 / n1
    z = sp.norm.ppf(0.975)
    se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    pooled = (c0 + c1) / (n0 + n1)
    z_test = (p1 - p0) / math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
    se_log = math.sqrt((1 - p1) / c1 + (1 - p0) / c0)
    return {
        "ci": (p1 - p0 - z * se, p1 - p0 + z * se),
        "p": 2 * sp.norm.sf(abs(z_test)),
        "rel_ci": (
            math.exp(math.log(p1 / p0) - z * se_log) - 1,
            math.exp(math.log(p1 / p0) + z * se_log) - 1,
        ),
    }


@pytest.mark.parametrize(("c0", "n0", "c1", "n1"), FIXED)
def test_comparison_matches_scipy(c0: int, n0: int, c1: int, n1: int) -> None:
    ours, theirs = compare((c0, n0), (c1, n1)), scipy_compare(c0, n0, c1, n1)
    assert ours.rate == pytest.approx(c1 / n1)
    assert ours.uplift == pytest.approx(c1 / n1 - c0 / n0)
    assert ours.uplift_ci == pytest.approx(theirs["ci"], rel=1e-9)
    assert ours.p_value == pytest.approx(theirs["p"], rel=1e-9)
    assert ours.relative == pytest.approx((c1 / n1) / (c0 / n0) - 1)
    assert ours.relative_ci == pytest.approx(theirs["rel_ci"], rel=1e-9)


def test_the_two_proportion_z_test_is_scipy_s_chi_square_on_the_2x2_table() -> None:
    """Independent of the formula above: the pooled z-test squared is Pearson's chi-square of
    the contingency table (without Yates' correction)."""
    for c0, n0, c1, n1 in FIXED:
        table = [[c0, n0 - c0], [c1, n1 - c1]]
        expected_p = sp.chi2_contingency(table, correction=False).pvalue
        assert compare((c0, n0), (c1, n1)).p_value == pytest.approx(expected_p, rel=1e-9)


def test_what_the_data_cannot_say_is_none() -> None:
    nothing = compare((0, 0), (3, 10))
    assert nothing.uplift_ci is None and nothing.p_value is None and nothing.relative is None
    no_control_conversions = compare((0, 100), (3, 100))
    assert no_control_conversions.relative is None and no_control_conversions.p_value is not None


@pytest.mark.parametrize(
    ("observed", "weights"),
    [([5012, 4988], [50, 50]), ([900, 1100], [50, 50]), ([3300, 3350, 3350], [1, 1, 1]),
     ([812, 95], [90, 10]), ([700, 300], [90, 10])],
)  # fmt: skip
def test_sample_ratio_matches_scipy_chisquare(observed: list[int], weights: list[float]) -> None:
    total = sum(observed)
    expected = [total * w / sum(weights) for w in weights]
    theirs = sp.chisquare(observed, expected)
    ours = sample_ratio(observed, weights)
    assert ours.chi2 == pytest.approx(theirs.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-300)
    assert ours.mismatch == (theirs.pvalue < 0.001)


def test_a_broken_split_is_flagged_and_a_fair_one_is_not() -> None:
    assert sample_ratio([700, 300], [90, 10]).mismatch
    assert not sample_ratio([5012, 4988], [50, 50]).mismatch


@settings(max_examples=300, deadline=None)
@given(st.floats(0.001, 400), st.integers(1, 30))
def test_chi_square_tail_matches_scipy(x: float, df: int) -> None:
    assert chi2_sf(x, df) == pytest.approx(sp.chi2.sf(x, df), rel=1e-9, abs=1e-15)


@settings(max_examples=300, deadline=None)
@given(st.floats(1e-12, 1 - 1e-12))
def test_normal_quantile_matches_scipy(p: float) -> None:
    assert normal_quantile(p) == pytest.approx(sp.norm.ppf(p), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("c", "n"), [(12, 100), (0, 50), (50, 50), (3, 7)])
def test_rate_interval_is_the_wald_interval_within_0_and_1(c: int, n: int) -> None:
    p = c / n
    half = sp.norm.ppf(0.975) * math.sqrt(p * (1 - p) / n)
    assert rate_interval(c, n) == pytest.approx((max(0.0, p - half), min(1.0, p + half)))
    assert rate_interval(0, 0) == (0.0, 0.0)


# Revenue per visitor: most visitors pay nothing, a few pay a skewed amount. Seeded draws.
def _revenue(seed: int, visitors: int, buyers: float, scale: float) -> list[float]:
    rng = random.Random(seed)
    return [
        round(rng.lognormvariate(math.log(scale), 0.8), 2) if rng.random() < buyers else 0.0
        for _ in range(visitors)
    ]


REVENUE = [
    (_revenue(1, 2400, 0.05, 40), _revenue(2, 2380, 0.065, 42)),
    (_revenue(3, 1000, 0.03, 25), _revenue(4, 1000, 0.03, 25)),
    (_revenue(5, 80, 0.2, 60), _revenue(6, 90, 0.3, 15)),
    (_revenue(7, 9600, 0.02, 120), _revenue(8, 9580, 0.021, 100)),
]


def moments(values: list[float]) -> Moments:
    return Moments(len(values), math.fsum(values), math.fsum(v * v for v in values))


@pytest.mark.parametrize(("control", "variant"), REVENUE)
def test_revenue_comparison_matches_scipy_on_the_raw_values(
    control: list[float], variant: list[float]
) -> None:
    """From the three sums the store keeps, the same test SciPy runs on every visitor's
    revenue: Welch's t, its p-value and its interval; and the delta method's interval of the
    relative uplift, from NumPy's sample variances."""
    ours = compare_means(moments(control), moments(variant))
    welch = sp.ttest_ind(variant, control, equal_var=False)
    assert ours.mean == pytest.approx(np.mean(variant), rel=1e-12)
    assert ours.uplift == pytest.approx(np.mean(variant) - np.mean(control), rel=1e-9)
    assert ours.p_value == pytest.approx(welch.pvalue, rel=1e-9)
    assert ours.df == pytest.approx(welch.df, rel=1e-9)
    assert ours.uplift_ci == pytest.approx(tuple(welch.confidence_interval(0.95)), rel=1e-9)
    m0, m1 = np.mean(control), np.mean(variant)
    se_log = math.sqrt(
        np.var(variant, ddof=1) / len(variant) / m1**2
        + np.var(control, ddof=1) / len(control) / m0**2
    )
    z = sp.norm.ppf(0.975)
    assert ours.relative == pytest.approx(m1 / m0 - 1, rel=1e-9)
    assert ours.relative_ci == pytest.approx(
        (m1 / m0 * math.exp(-z * se_log) - 1, m1 / m0 * math.exp(z * se_log) - 1), rel=1e-9
    )


def test_the_delta_method_s_error_is_the_ratio_s_spread_in_many_experiments() -> None:
    """Independent of the formula: over 1,000 seeded experiments (the same draws on every
    run), the standard error of log(m1/m0) that the delta method gives is, on average, the
    spread of the log-ratios observed (NumPy's standard deviation) to within 8%."""
    rng = np.random.default_rng(17)
    runs, n = 1000, 2000
    paid = rng.random((runs, 2, n)) < np.array([0.05, 0.06])[None, :, None]
    revenue = np.where(paid, rng.lognormal(math.log(40), 0.8, (runs, 2, n)), 0.0)
    logs, errors = [], []
    for control, variant in revenue:
        sums = [Moments(n, float(x.sum()), float((x * x).sum())) for x in (control, variant)]
        result = compare_means(*sums)
        assert result.relative is not None and result.relative_ci is not None
        low, high = (math.log(1 + r) for r in result.relative_ci)
        logs.append(math.log(1 + result.relative))
        errors.append((high - low) / (2 * sp.norm.ppf(0.975)))
    assert np.mean(errors) == pytest.approx(np.std(logs, ddof=1), rel=0.08)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(2, 10**7), st.floats(0.01, 1e4), st.floats(0.5, 100),
    st.integers(2, 10**7), st.floats(0.01, 1e4), st.floats(0.5, 100),
)  # fmt: skip
def test_welch_from_sums_matches_scipy_ttest_ind_from_stats(
    n0: int, mean0: float, cv0: float, n1: int, mean1: float, cv1: float
) -> None:
    """Revenue per visitor spreads at least half its mean (most visitors pay nothing); a
    spread far below the mean would drown in the rounding of sum(x²) - n·mean², which the
    store's sums cannot avoid and no site's revenue comes near."""
    sd0, sd1 = mean0 * cv0, mean1 * cv1

    def sums(n: int, mean: float, sd: float) -> Moments:
        return Moments(n, n * mean, sd * sd * (n - 1) + n * mean * mean)

    ours = compare_means(sums(n0, mean0, sd0), sums(n1, mean1, sd1))
    theirs = sp.ttest_ind_from_stats(mean1, sd1, n1, mean0, sd0, n0, equal_var=False)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-7, abs=1e-300)
    assert ours.uplift_ci is not None and ours.df is not None
    half = (ours.uplift_ci[1] - ours.uplift_ci[0]) / 2
    se = math.sqrt(sd0 * sd0 / n0 + sd1 * sd1 / n1)
    assert half == pytest.approx(sp.t.ppf(0.975, ours.df) * se, rel=1e-7)


def test_what_revenue_data_cannot_say_is_none() -> None:
    nobody_paid = compare_means(Moments(500, 0.0, 0.0), Moments(480, 0.0, 0.0))
    assert (nobody_paid.uplift, nobody_paid.uplift_ci, nobody_paid.p_value) == (0.0, None, None)
    assert nobody_paid.relative is None and nobody_paid.relative_ci is None
    one_visitor = compare_means(Moments(1, 30.0, 900.0), Moments(400, 800.0, 64_000.0))
    assert one_visitor.uplift_ci is None and one_visitor.p_value is None
    assert one_visitor.relative == pytest.approx(2 / 30 - 1)
    only_control_paid = compare_means(Moments(100, 300.0, 9000.0), Moments(100, 0.0, 0.0))
    assert only_control_paid.relative == -1 and only_control_paid.relative_ci is None
    assert only_control_paid.p_value is not None
    empty = compare_means(Moments(0, 0.0, 0.0), Moments(0, 0.0, 0.0))
    assert empty.mean == 0 and empty.relative is None and empty.p_value is None


def test_a_denormal_sized_spread_on_one_side_gives_that_side_s_degrees_of_freedom() -> None:
    """A goal event worth 1e-100 makes control's squared SE so small that its square
    underflows to 0; with nobody paying in the variant, Welch's df once divided by zero."""
    tiny = compare_means(Moments(8, 1e-100, 1e-200), Moments(10, 0.0, 0.0))
    assert tiny.df == pytest.approx(7)  # all the spread is control's: n0 - 1
    assert tiny.p_value is not None and 0 <= tiny.p_value <= 1
    assert tiny.uplift_ci is not None and all(math.isfinite(x) for x in tiny.uplift_ci)
    mirrored = compare_means(Moments(10, 0.0, 0.0), Moments(8, 1e-100, 1e-200))
    assert mirrored.df == pytest.approx(7)


def test_no_spread_on_either_side_gives_no_relative_interval() -> None:
    """Everyone in each arm paid the same: 4 visitors do not make +100% a certainty."""
    same = compare_means(Moments(2, 20.0, 200.0), Moments(2, 40.0, 800.0))
    assert same.relative == pytest.approx(1.0)
    assert same.relative_ci is None and same.uplift_ci is None and same.p_value is None


@settings(max_examples=300, deadline=None)
@given(st.floats(-60, 60), st.floats(0.5, 1e8))
@example(2.0, 45_682_411.0)  # near a normal, the incomplete beta keeps 8 or 9 digits, not 10
def test_t_tail_matches_scipy(t: float, df: float) -> None:
    # A p-value is read to 3 digits; 1e-7 leaves the huge degrees of freedom a margin.
    assert t_sf(t, df) == pytest.approx(sp.t.sf(t, df), rel=1e-7, abs=1e-300)


@settings(max_examples=300, deadline=None)
@given(st.floats(1e-9, 1 - 1e-9), st.floats(1, 1e8))
def test_t_quantile_matches_scipy(p: float, df: float) -> None:
    assert t_quantile(p, df) == pytest.approx(sp.t.ppf(p, df), rel=1e-7, abs=1e-12)


@pytest.mark.parametrize("df", [1e5, 3.7e5, 2e6, 4.5e7, 1e9])
@pytest.mark.parametrize("p", [1e-9, 1e-4, 0.025, 0.31, 0.5, 0.975, 1 - 1e-6])
def test_t_quantile_at_many_degrees_of_freedom_is_the_series(p: float, df: float) -> None:
    """From SERIES_DF on, the quantile is the Cornish-Fisher series alone (no Newton steps on
    the incomplete beta, whose cost grows with df): as exact as SciPy to a few ulps."""
    assert df >= SERIES_DF
    assert t_quantile(p, df) == pytest.approx(sp.t.ppf(p, df), rel=1e-14, abs=1e-15)
