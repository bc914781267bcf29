"""Cost of one condition evaluation: compiled closures vs the interpreting reference.

Both run in this process on the same realistic set: 20 rules of 3-6 clauses over nested
context paths, with $regex and $in lists of 50, against a page-view context like the one the
decision engine builds. Prints µs per evaluation and the ratio; the figure for a typical
3-clause condition is the one the decision path pays most often.

    python bench/conditions.py
"""

from __future__ import annotations

import random
import sys
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from condition_oracle import evaluate as interpret
from sitecue.conditions import compile_condition
from timing import in_turns

COUNTRIES = [f"c{i:02d}" for i in range(50)]
SECTIONS = [f"section-{i}" for i in range(50)]

THREE_CLAUSES = {
    "triggers.paywall_view.7d": {"$gte": 3},
    "attributes.subscriber": {"$ne": True},
    "page.path": {"$regex": "^/articles/"},
}


def realistic_rules(rng: random.Random) -> list[dict[str, Any]]:
    """20 conditions of 3-6 clauses, shaped like the rules marketers write."""
    pool: list[tuple[str, Any]] = [
        ("triggers.paywall_view.7d", {"$gte": 3}),
        ("triggers.add_to_cart.session", {"$gt": 0}),
        ("triggers.article_read.30d", {"$gte": 5, "$lt": 50}),
        ("attributes.subscriber", {"$ne": True}),
        ("attributes.customer", True),
        ("attributes.loyalty_tier", {"$in": ["gold", "platinum", "silver"]}),
        ("attributes.avg_order_value", {"$gte": 80}),
        ("attributes.country", {"$in": COUNTRIES}),
        ("page.path", {"$regex": "^/(articles|news)/"}),
        ("page.section", {"$nin": SECTIONS}),
        ("page.referrer", {"$regex": "(google|bing)\\."}),
        ("utm.source", {"$in": ["newsletter", "mail", "crm"]}),
        ("visitor.visits", {"$gte": 2}),
        ("visitor.identified", False),
        ("device.viewport", {"$in": ["mobile", "tablet"]}),
        ("time.hour", {"$gte": 8, "$lt": 22}),
        ("$or", [{"utm.campaign": {"$regex": "^black-friday"}}, {"visitor.sessions": {"$gt": 3}}]),
    ]
    rules = []
    for _ in range(20):
        clauses = dict(rng.sample(pool, rng.randint(3, 6)))
        rules.append(clauses)
    return rules


CONTEXT = {
    "page": {"url": "https://news.example/articles/42?utm_source=mail", "path": "/articles/42",
             "section": "section-77", "referrer": "https://www.google.com/", "title": "A story"},
    "utm": {"source": "newsletter", "campaign": "black-friday-2026"},
    "visitor": {"new": False, "visits": 7, "sessions": 4, "identified": False},
    "attributes": {"subscriber": False, "customer": True, "loyalty_tier": "gold",
                   "avg_order_value": 112.5, "country": "c31"},
    "triggers": {"paywall_view": {"7d": 3, "session": 1}, "add_to_cart": {"session": 1},
                 "article_read": {"30d": 12}},
    "time": {"hour": 14, "weekday": 3},
    "device": {"viewport": "mobile"},
}  # fmt: skip

ANONYMOUS = {
    "page": {"url": "https://news.example/", "path": "/", "section": "section-3", "referrer": "",
             "title": "Front page"},
    "utm": {},
    "visitor": {"new": True, "visits": 1, "sessions": 1, "identified": False},
    "attributes": {},
    "triggers": {"paywall_view": {"7d": 0, "session": 0}},
    "time": {"hour": 23, "weekday": 6},
    "device": {"viewport": "desktop"},
}  # fmt: skip
CONTEXTS = [CONTEXT, ANONYMOUS]


def per_call_us(fn: Any, number: int) -> float:
    """Best of 5 runs, in µs per call: the least disturbed by other work on the machine."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main() -> None:
    rules = realistic_rules(random.Random(7))
    compiled = [compile_condition(r) for r in rules]
    for context in CONTEXTS:
        assert [c(context) for c in compiled] == [interpret(context, r) for r in rules]
    matched = [sum(c(context) for c in compiled) for context in CONTEXTS]

    def run_compiled() -> None:
        for context in CONTEXTS:
            for c in compiled:
                c(context)

    def run_interpreted() -> None:
        for context in CONTEXTS:
            for r in rules:
                interpret(context, r)

    evaluations = len(rules) * len(CONTEXTS)
    fast = per_call_us(run_compiled, 1000) / evaluations
    slow = per_call_us(run_interpreted, 100) / evaluations

    three = compile_condition(THREE_CLAUSES)
    three_fast = per_call_us(lambda: three(CONTEXT), 50000)
    three_slow = per_call_us(lambda: interpret(CONTEXT, THREE_CLAUSES), 5000)

    print(
        f"realistic set: {len(rules)} rules, {sum(len(r) for r in rules)} clauses; "
        f"matching a returning reader: {matched[0]}, a first-time visitor: {matched[1]}"
    )
    print(f"  compiled     {fast:7.2f} µs per condition")
    print(f"  interpreted  {slow:7.2f} µs per condition")
    print(f"  ratio        {slow / fast:7.1f}x faster compiled (target >= 3x)")
    print("typical 3-clause condition (trigger window, attribute, $regex):")
    print(f"  compiled     {three_fast:7.2f} µs (target < 2 µs)")
    print(f"  interpreted  {three_slow:7.2f} µs")
    print(f"  ratio        {three_slow / three_fast:7.1f}x")


def reading_time() -> None:
    """A condition that reads no reading time costs the same whether the context carries
    ``reading`` or not (a site none of whose rules read it builds an empty one); one that
    reads ``reading.minutes.7d`` costs what a trigger window does. Timed in turns."""
    with_reading = {**CONTEXT, "reading": {"minutes": {"7d": 42.5}}}
    three = compile_condition(THREE_CLAUSES)
    # The typical condition with its trigger window swapped for a reading-time window.
    reads = compile_condition(
        {
            "reading.minutes.7d": {"$gte": 30},
            "attributes.subscriber": {"$ne": True},
            "page.path": {"$regex": "^/articles/"},
        }
    )
    cases = [
        ("3 clauses, no reading in the context", lambda: three(CONTEXT)),
        ("3 clauses, reading in the context", lambda: three(with_reading)),
        ("reading.minutes.7d + 2 clauses", lambda: reads(with_reading)),
    ]
    assert three(CONTEXT) and three(with_reading) and reads(with_reading)
    best = [float("inf")] * len(cases)
    for _ in range(7):
        for i, (_, fn) in enumerate(cases):
            best[i] = min(best[i], timeit.timeit(fn, number=20000) / 20000 * 1e6)
    print("reading time:")
    for (label, _), us in zip(cases, best, strict=True):
        print(f"  {label:38} {us:6.2f} µs")


def new_context_unused() -> None:
    """A page view that uses none of the new context (sums, page data) costs the same: the
    realistic set over the contexts as before, and over the same contexts carrying sums and
    page data, measured in turns in this run; then what a clause on each costs."""
    rules = realistic_rules(random.Random(7))
    compiled = [compile_condition(r) for r in rules]
    extended = [
        {**c, "sums": {"purchase": {"30d": 104.9}},
         "page": {**c["page"], "data": {"cart_value": 520.0, "category": "cameras"}}}
        for c in CONTEXTS
    ]  # fmt: skip

    def over(contexts: list[dict[str, Any]]) -> Any:
        def run() -> None:
            for context in contexts:
                for c in compiled:
                    c(context)

        return run

    evaluations = len(rules) * len(CONTEXTS)
    plain, new = (us / evaluations for us in in_turns(over(CONTEXTS), over(extended), 20, 400))
    print("the new context (sums, page data) present but unused by the rules:")
    print(f"  without it   {plain:7.3f} µs per condition")
    print(f"  with it      {new:7.3f} µs per condition")
    print(f"  ratio        {new / plain:7.2f} (target ~1.00: it costs nothing unused)")
    clauses = {
        "triggers.paywall_view.7d >= 3": {"triggers.paywall_view.7d": {"$gte": 3}},
        "sums.purchase.30d > 100": {"sums.purchase.30d": {"$gt": 100}},
        "page.data.cart_value > 500": {"page.data.cart_value": {"$gt": 500}},
    }
    for name, clause in clauses.items():
        test = compile_condition(clause)
        print(f"  {name:31} {per_call_us(lambda t=test: t(extended[0]), 50000):5.2f} µs")


if __name__ == "__main__":
    main()
    reading_time()
    new_context_unused()
