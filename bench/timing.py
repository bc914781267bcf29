"""Timing two callables against each other on a busy machine."""

from __future__ import annotations

import timeit
from typing import Any


def in_turns(a: Any, b: Any, number: int, rounds: int) -> tuple[float, float]:
    """The best µs per call of ``a`` and of ``b``, timed in many short turns: on a busy
    machine both meet the same quiet moments, so their ratio holds where one long run
    each would compare two different loads."""
    best_a = best_b = float("inf")
    for _ in range(rounds):
        best_a = min(best_a, timeit.timeit(a, number=number) / number * 1e6)
        best_b = min(best_b, timeit.timeit(b, number=number) / number * 1e6)
    return best_a, best_b
