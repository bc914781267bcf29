"""Experiment statistics against SciPy (a test dependency only) on fixed data and on random
counts."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sp

from sitecue.stats import chi2_sf, compare, normal_quantile, rate_interval, sample_ratio

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
