"""Variant assignment: GrowthBook's hash, range, choice, namespace and weight cases."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from growthbook_cases import conformance
from sitecue.bucketing import (
    bucket_ranges,
    choose_variation,
    equal_weights,
    fnv1a32,
    fnv_hash,
    in_namespace,
)


def floor8(x: float) -> float:
    """GrowthBook's suite compares floats after flooring to 8 decimals."""
    return math.floor(x * 1e8) / 1e8


@pytest.mark.parametrize(("seed", "value", "version", "expected"), conformance("hash"))
def test_hash(seed: str, value: str, version: int, expected: float | None) -> None:
    assert fnv_hash(seed, value, version) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [(c[1], c[2]) for c in conformance("getBucketRange")],
    ids=[c[0] for c in conformance("getBucketRange")],
)
def test_bucket_ranges(args: list[Any], expected: list[list[float]]) -> None:
    ranges = bucket_ranges(*args)
    assert [[floor8(a), floor8(b)] for a, b in ranges] == [
        [floor8(a), floor8(b)] for a, b in expected
    ]


@pytest.mark.parametrize(
    ("n", "ranges", "expected"),
    [(c[1], c[2], c[3]) for c in conformance("chooseVariation")],
    ids=[c[0] for c in conformance("chooseVariation")],
)
def test_choose_variation(n: float, ranges: list[list[float]], expected: int) -> None:
    assert choose_variation(n, ranges) == expected


@pytest.mark.parametrize(
    ("user_id", "namespace", "expected"),
    [(c[1], tuple(c[2]), c[3]) for c in conformance("inNamespace")],
    ids=[c[0] for c in conformance("inNamespace")],
)
def test_in_namespace(user_id: str, namespace: tuple[str, float, float], expected: bool) -> None:
    assert in_namespace(user_id, namespace) is expected


@pytest.mark.parametrize(("n", "expected"), conformance("getEqualWeights"))
def test_equal_weights(n: int, expected: list[float]) -> None:
    assert [floor8(w) for w in equal_weights(n)] == [floor8(w) for w in expected]


def test_section_sizes() -> None:
    sections = ["hash", "getBucketRange", "chooseVariation", "inNamespace", "getEqualWeights"]
    assert sum(len(conformance(s)) for s in sections) == 63  # with evalCondition's 248: 311


def test_fnv_hashes_utf16_code_units_like_javascript() -> None:
    # "😀" is two UTF-16 code units (0xD83D 0xDE00); JavaScript hashes those, not the code point.
    h = 0x811C9DC5
    for unit in (0xD83D, 0xDE00):
        h = ((h ^ unit) * 16777619) & 0xFFFFFFFF
    assert fnv1a32("😀") == h


@given(seed=st.text(max_size=8), user=st.text(max_size=12))
def test_assignment_is_stable_and_within_ranges(seed: str, user: str) -> None:
    ranges = bucket_ranges(3, 0.8, [0.5, 0.3, 0.2])
    n = fnv_hash(seed, user, 2)
    assert n is not None and 0 <= n < 1
    assert choose_variation(n, ranges) == choose_variation(fnv_hash(seed, user, 2), ranges)  # type: ignore[arg-type]


def test_weights_split_visitors_in_proportion() -> None:
    ranges = bucket_ranges(2, 1.0, [0.9, 0.1])
    picks = [
        choose_variation(fnv_hash("paywall-faq", f"visitor-{i}", 2), ranges) for i in range(20000)
    ]  # type: ignore[arg-type]
    share = picks.count(1) / len(picks)
    assert 0.09 < share < 0.11
