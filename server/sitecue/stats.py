"""Experiment statistics: conversion rates, uplift against control with confidence intervals,
a two-sided p-value, the same for revenue per visitor, and a sample-ratio-mismatch check.
Pure functions of counts and sums, so the database aggregates and this module only does
arithmetic.

The methods are the usual ones for conversion experiments, chosen so a marketer can check
them by hand: a Wald interval for the absolute difference of two proportions, a log-ratio
(delta method) interval for the relative uplift, a pooled two-proportion z-test, and
Pearson's chi-square against the configured weights for the sample ratio. Revenue per
visitor is a mean of a skewed, mostly-zero quantity: Welch's t-test (no equal-variance
assumption) from each variant's visitors, revenue and sum of squared per-visitor revenue,
and the log-ratio delta method for its relative uplift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "SERIES_DF",
    "Comparison",
    "MeanComparison",
    "Moments",
    "SampleRatio",
    "chi2_sf",
    "compare",
    "compare_means",
    "normal_quantile",
    "rate_interval",
    "sample_ratio",
    "t_quantile",
    "t_sf",
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
class Moments:
    """What the store sums per variant for a mean: the visitors, their total revenue, and the
    total of each visitor's revenue squared (the variance comes from these three)."""

    n: int
    total: float
    total_sq: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """The sample variance (n - 1 in the denominator); 0 below two visitors. Rounding
        can take sum(x²) - n·mean² a hair below zero: clamped."""
        if self.n < 2:
            return 0.0
        return max(0.0, (self.total_sq - self.total * self.mean) / (self.n - 1))


@dataclass(frozen=True)
class MeanComparison:
    """A variant's mean (revenue per visitor) against control's. Intervals and the p-value
    are None where the data cannot give one: fewer than two visitors on a side, or no spread
    at all (nobody paid anything, say); the relative uplift needs revenue on both sides."""

    mean: float
    uplift: float  # absolute: mean - control mean
    uplift_ci: tuple[float, float] | None
    relative: float | None  # mean / control mean - 1
    relative_ci: tuple[float, float] | None
    p_value: float | None
    df: float | None  # Welch-Satterthwaite degrees of freedom


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


def compare_means(control: Moments, variant: Moments, confidence: float = 0.95) -> MeanComparison:
    """Welch's t-test of the variant's mean against control's, with its interval (the t
    quantile at the Welch-Satterthwaite degrees of freedom), and the relative uplift's
    interval by the delta method on the log of the ratio of means (normal quantile)."""
    m0, m1 = control.mean, variant.mean
    uplift = m1 - m0
    uplift_ci = p_value = df = relative = relative_ci = None
    if control.n and m0 > 0 and math.isfinite(m1 / m0):
        relative = m1 / m0 - 1
    if control.n >= 2 and variant.n >= 2:
        w0, w1 = control.variance / control.n, variant.variance / variant.n  # squared SEs
        se = math.sqrt(w0 + w1)
        if se > 0:
            # Welch-Satterthwaite, scaled by the larger squared SE so that a denormal-sized
            # variance (a goal event worth 1e-100) cannot underflow the denominator to 0:
            # scaled, it is at least 1 / (max n - 1).
            s = max(w0, w1)
            a, b = w0 / s, w1 / s
            df = (a + b) ** 2 / (a * a / (control.n - 1) + b * b / (variant.n - 1))
            half = t_quantile(0.5 + confidence / 2, df) * se
            uplift_ci = (uplift - half, uplift + half)
            p_value = min(1.0, 2 * t_sf(abs(uplift) / se, df))
        if relative is not None and m1 > 0 and se > 0:  # no spread at all: no interval
            # Var(log m) ~ Var(m) / m² (delta method); the interval of log(m1/m0), exponentiated.
            se_log = math.hypot(math.sqrt(w1) / m1, math.sqrt(w0) / m0)
            half_log = normal_quantile(0.5 + confidence / 2) * se_log
            log_ratio = math.log(m1 / m0)
            if log_ratio + half_log < 700:  # else no finite upper bound: no interval
                relative_ci = (
                    math.exp(log_ratio - half_log) - 1,
                    math.exp(log_ratio + half_log) - 1,
                )
    return MeanComparison(m1, uplift, uplift_ci, relative, relative_ci, p_value, df)


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` (> 0, not necessarily whole) degrees of freedom:
    half the regularised incomplete beta I_x(df/2, 1/2) at x = df / (df + t²)."""
    if df <= 0:
        raise ValueError("df: expected degrees of freedom above 0")
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    t2 = t * t
    # x and 1 - x each computed directly: 1 - x is tiny for a small t, x for a huge one.
    tail = 0.5 * _betainc(df / 2, 0.5, df / (df + t2), t2 / (df + t2))
    return tail if t >= 0 else 1 - tail


def t_quantile(p: float, df: float) -> float:
    """The t distribution's quantile: the t with P(T <= t) = p. Newton's method on ``t_sf``
    from the Cornish-Fisher expansion, kept within a bracket that bisection narrows when a
    step would leave it, so it converges for any df (a handful of steps in practice)."""
    if not 0 < p < 1:
        raise ValueError("p: expected a probability strictly between 0 and 1")
    # The tail's probability as given (1 - p of a small p would round away its digits).
    if p < 0.5:
        return -_t_upper(p, df)
    return _t_upper(1 - p, df)


# From here on the Cornish-Fisher series below (its next term is under 1e-15 of t even six
# standard errors out) is more exact than Newton's steps on the incomplete beta, and ~100x
# cheaper: revenue per visitor of a large experiment has millions of degrees of freedom.
SERIES_DF = 1e5


def _t_upper(target: float, df: float) -> float:
    """The t >= 0 with P(T > t) = target (at most 1/2)."""
    z = -normal_quantile(target)
    z2 = z * z
    # The Cornish-Fisher expansion of t in powers of 1/df (Abramowitz & Stegun 26.7.5).
    guess = z + z * (z2 + 1) / (4 * df) + z * ((5 * z2 + 16) * z2 + 3) / (96 * df * df)
    if df >= SERIES_DF:
        return guess + z * (((3 * z2 + 19) * z2 + 17) * z2 - 15) / (384 * df**3)
    low, high = 0.0, max(1.0, 2 * z)
    while t_sf(high, df) > target:  # the t's tails are heavier than the normal's
        low, high = high, high * 2
    t = guess if low < guess < high else (low + high) / 2
    log_norm = _log_gamma_ratio(df / 2, 0.5) - 0.5 * math.log(df * math.pi)
    for _ in range(200):
        excess = t_sf(t, df) - target
        if excess > 0:
            low = t
        else:
            high = t
        density = math.exp(log_norm - (df + 1) / 2 * math.log1p(t * t / df))
        step = excess / density if density > 0 else math.inf
        following = t + step  # the tail falls as t grows: t_sf' = -density
        if not low < following < high:
            following = (low + high) / 2
        if abs(following - t) <= 1e-15 * abs(following) or following in (low, high):
            return following
        t = following
    return t


def _log_gamma_ratio(z: float, b: float) -> float:
    """ln Γ(z + b) - ln Γ(z), without the cancellation of two huge lgammas when z is large
    (Stirling's series, whose leading terms cancel exactly in closed form)."""
    if z < 100:
        return math.lgamma(z + b) - math.lgamma(z)

    def tail(x: float) -> float:  # Stirling's series beyond its leading terms
        return 1 / (12 * x) - 1 / (360 * x**3) + 1 / (1260 * x**5)

    return b * math.log(z) + (z + b - 0.5) * math.log1p(b / z) - b + tail(z + b) - tail(z)


def _log_beta(a: float, b: float) -> float:
    small, big = min(a, b), max(a, b)
    return math.lgamma(small) - _log_gamma_ratio(big, small)


def _betainc(a: float, b: float, x: float, y: float) -> float:
    """The regularised incomplete beta I_x(a, b), given x and y = 1 - x: the continued
    fraction where it converges fast, through the symmetry I_x(a, b) = 1 - I_y(b, a)
    elsewhere (Numerical Recipes' betai)."""
    if x <= 0:
        return 0.0
    if y <= 0:
        return 1.0
    # log1p of the small one: log(x) of an x a hair below 1 would lose the digits that a huge
    # a (many degrees of freedom) multiplies.
    log_x = math.log1p(-y) if y < 0.5 else math.log(x)
    log_y = math.log1p(-x) if x < 0.5 else math.log(y)
    front = math.exp(a * log_x + b * log_y - _log_beta(a, b))
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1 - front * _beta_fraction(b, a, y) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta, by Lentz's method (betacf)."""
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (tiny if abs(d) < tiny else d)
    h = d
    for m in range(1, 100_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (tiny if abs(d) < tiny else d)
            c = 1 + numerator / c
            c = tiny if abs(c) < tiny else c
            h *= d * c
        if abs(d * c - 1) < 1e-16:
            break
    return h
