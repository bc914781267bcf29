"""Variant assignment that agrees with GrowthBook's SDKs to the last digit.

A visitor's bucket is a hash of (seed, visitor id) in [0, 1); a rule's variants own
consecutive ranges of that interval sized by their weights and shrunk by coverage::

    >>> ranges = bucket_ranges(2, 1.0, [0.9, 0.1])
    >>> choose_variation(fnv_hash("paywall-faq", "visitor-1", 2), ranges)
    0

Because the functions match GrowthBook's published conformance cases, an assignment made
here is the one a GrowthBook SDK would make for the same seed and id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "bucket_ranges",
    "choose_variation",
    "equal_weights",
    "fnv1a32",
    "fnv_hash",
    "in_namespace",
]

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 16777619

Range = tuple[float, float]


def fnv1a32(text: str) -> int:
    """32-bit FNV-1a over UTF-16 code units, as JavaScript's ``charCodeAt`` sees a string."""
    h = _FNV_OFFSET
    units: Iterable[int]
    if text.isascii():
        units = text.encode("ascii")  # one byte per code unit
    elif any(ord(c) > 0xFFFF for c in text):
        data = text.encode("utf-16-be", "surrogatepass")
        units = [(data[i] << 8) | data[i + 1] for i in range(0, len(data), 2)]
    else:
        units = map(ord, text)
    for unit in units:
        h = ((h ^ unit) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def fnv_hash(seed: str, value: str, version: int) -> float | None:
    """GrowthBook's ``hash``: a number in [0, 1) for hash versions 1 and 2, None otherwise
    (an experiment with an unknown hash version enrols nobody)."""
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    return None


def equal_weights(num_variations: int) -> list[float]:
    """``n`` equal weights summing to one; none for ``n <= 0``."""
    if num_variations <= 0:
        return []
    return [1 / num_variations] * num_variations


def bucket_ranges(
    num_variations: int, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> list[Range]:
    """The [start, end) range of each variant. Coverage is clamped to [0, 1] and shrinks each
    range from its start, leaving gaps that enrol nobody; weights that are missing, of the
    wrong count or not summing to 1 (±0.01) are replaced by equal weights."""
    coverage = min(max(coverage, 0.0), 1.0)
    equal = equal_weights(num_variations)
    chosen = list(weights) if weights is not None else equal
    if len(chosen) != num_variations or not 0.99 <= sum(chosen) <= 1.01:
        chosen = equal
    ranges: list[Range] = []
    cumulative = 0.0
    for w in chosen:
        ranges.append((cumulative, cumulative + coverage * w))
        cumulative += w
    return ranges


def choose_variation(n: float, ranges: Sequence[Sequence[float]]) -> int:
    """The index of the half-open range holding ``n``, or -1 when it falls in a gap."""
    for i, (start, end) in enumerate(ranges):
        if start <= n < end:
            return i
    return -1


def in_namespace(user_id: str, namespace: tuple[str, float, float]) -> bool:
    """Whether ``user_id`` falls in ``[start, end)`` of namespace ``(id, start, end)``;
    experiments sharing a namespace with disjoint ranges never share a visitor."""
    name, start, end = namespace
    n = fnv_hash(f"__{name}", user_id, 1)
    return n is not None and start <= n < end
