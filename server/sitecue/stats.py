"""Experiment statistics: conversion rates, uplift against control with confidence intervals,
a two-sided p-value, and a sample-ratio-mismatch check. Pure functions of counts, so the
database aggregates and this module only does arithmetic.

The methods are the usual ones for conversion experiments, chosen so a marketer can check
them by hand: a Wald interval for the absolute difference of two proportions, a log-ratio
(delta method) interval for the relative uplift, a pooled two-proportion z-test, and
Pearson's chi-square against the configured weights for the sample ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "Comparison",
    "SampleRatio",
    "chi2_sf",
    "compare",
    "normal_quantile",
    "rate_interval",
    "sample_ratio",
]

SRM_THRESHOLD = 0.001
"""A sample ratio this unlikely under the configured weights means the experiment is broken
(an assignment or logging fault), not unlucky: its results should not be trusted."""


Interval = tuple[float, float]


@dataclass(frozen=True)
class Comparison:
    """A variant against control. Intervals are None where the data cannot give one (no
    exposures yet, or a control that never converted, for the relative uplift)."""

    rate: float
    uplift: float  # absolute: rate - control rate
    uplift_ci: tuple[float, float] | None
    relative: float | None  # rate / control rate - 1
    relative_ci: tuple[float, float] | None
    p_value: float | None


@dataclass(frozen=True)
class SampleRatio:
    chi2: float
    p_value: float
    mismatch: bool  # p below SRM_THRESHOLD


def normal_quantile(p: float) -> float:
    """The standard normal quantile (Acklam's rational approximation, refined by one
    Newton step on erfc: accurate to about 1e-12)."""
    if not 0 < p < 1:
        raise ValueError("p: expected a probability strictly between 0 and 1")
    a = (-39.69683028665376, 220.9460984245205, -275.9285104469687,
         138.3577518672690, -30.66479806614716, 2.506628277459239)  # fmt: skip
    b = (-54.47609879822406, 161.5858368580409, -155.6989798598866,
         66.80131188771972, -13.28068155288572)  # fmt: skip
    c = (-0.007784894002430293, -0.3223964580411365, -2.400758277161838,
         -2.549732539343734, 4.374664141464968, 2.938163982698783)  # fmt: skip
    d = (0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416)
    low = 0.02425
    if p < low:
        q = math.sqrt(-2 * math.log(p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1
        )
    elif p <= 1 - low:
        q = p - 0.5
        r = q * q
        x = (
            (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5])
            * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        )
    else:
        return -normal_quantile(1 - p)
    error = 0.5 * math.erfc(-x / math.sqrt(2)) - p
    return x - error * math.sqrt(2 * math.pi) * math.exp(x * x / 2)


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def rate_interval(conversions: int, exposed: int, confidence: float = 0.95) -> Interval:
    """The Wald interval of one conversion rate, kept within [0, 1]; (0, 0) before any
    exposure."""
    if not exposed:
        return (0.0, 0.0)
    p = conversions / exposed
    half = normal_quantile(0.5 + confidence / 2) * math.sqrt(p * (1 - p) / exposed)
    return (max(0.0, p - half), min(1.0, p + half))


def compare(
    control: tuple[int, int], variant: tuple[int, int], confidence: float = 0.95
) -> Comparison:
    """``(conversions, exposed)`` of the variant against those of control."""
    (c0, n0), (c1, n1) = control, variant
    p0 = c0 / n0 if n0 else 0.0
    p1 = c1 / n1 if n1 else 0.0
    z = normal_quantile(0.5 + confidence / 2)
    uplift = p1 - p0
    uplift_ci = p_value = relative = relative_ci = None
    if n0 and n1:
        se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
        uplift_ci = (uplift - z * se, uplift + z * se)
        pooled = (c0 + c1) / (n0 + n1)
        se0 = math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
        p_value = 2 * _normal_sf(abs(uplift) / se0) if se0 else 1.0
    if n0 and n1 and c0:
        relative = p1 / p0 - 1
        if c1:
            se_log = math.sqrt((1 - p1) / c1 + (1 - p0) / c0)  # (1-p)/(n p) = (1-p)/c
            log_ratio = math.log(p1 / p0)
            relative_ci = (
                math.exp(log_ratio - z * se_log) - 1,
                math.exp(log_ratio + z * se_log) - 1,
            )
    return Comparison(p1, uplift, uplift_ci, relative, relative_ci, p_value)


def sample_ratio(observed: list[int], weights: list[float]) -> SampleRatio:
    """Pearson's chi-square of the exposures per variant against the configured weights."""
    total, weight = sum(observed), sum(weights)
    if total == 0 or len(observed) < 2:
        return SampleRatio(0.0, 1.0, False)
    expected = [total * w / weight for w in weights]
    chi2 = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True) if e > 0)
    p = chi2_sf(chi2, len(observed) - 1)
    return SampleRatio(chi2, p, p < SRM_THRESHOLD)


def chi2_sf(x: float, df: int) -> float:
    """P(X > x) for a chi-square variable with ``df`` degrees of freedom: the regularised
    upper incomplete gamma function Q(df/2, x/2), by its series below a + 1 and its
    continued fraction above (Numerical Recipes' gammq)."""
    if x <= 0:
        return 1.0
    a, y = df / 2, x / 2
    log_front = a * math.log(y) - y - math.lgamma(a)
    if y < a + 1:  # series for P, then Q = 1 - P
        term = total = 1 / a
        k = a
        while abs(term) > abs(total) * 1e-16:
            k += 1
            term *= y / k
            total += term
        return max(0.0, 1 - total * math.exp(log_front))
    tiny = 1e-300  # Lentz's continued fraction for Q
    b = y + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        step = d * c
        h *= step
        if abs(step - 1) < 1e-16:
            break
    return math.exp(log_front) * h
