"""The condition language: GrowthBook's conformance cases, compile-time errors with JSON paths,
and agreement between the compiled closures and the interpreting reference."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from condition_oracle import evaluate as reference
from growthbook_cases import conformance
from sitecue._jsregex import nested_quantifier, repeats
from sitecue.conditions import REGEX_TIMEOUTS, compile_condition, eval_condition
from sitecue.errors import ConditionError, ConfigError, Problem

CASES = conformance("evalCondition")


@pytest.mark.parametrize(
    ("condition", "attributes", "expected", "groups"),
    [(c[1], c[2], c[3], c[4] if len(c) > 4 else None) for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_growthbook_conformance(
    condition: Any, attributes: Any, expected: bool, groups: Any
) -> None:
    assert eval_condition(attributes, condition, groups) is expected


def test_all_conformance_cases_are_collected() -> None:
    assert len(CASES) == 248


@pytest.mark.parametrize(
    ("condition", "attributes", "expected"),
    [
        # JavaScript's `$` never matches before a trailing newline; Python's does.
        ({"d": {"$regex": "-12-25$"}}, {"d": "1980-12-25\n"}, False),
        # `.` stops at \r as well as \n.
        ({"d": {"$regex": "^a.b$"}}, {"d": "a\rb"}, False),
        # \d is ASCII-only in JavaScript.
        ({"d": {"$regex": "^\\d+$"}}, {"d": "١٢٣"}, False),
        ({"d": {"$regex": "^\\d+$"}}, {"d": "123"}, True),
        # Named groups are written the JavaScript way.
        ({"d": {"$regex": "(?<year>\\d{4})-\\k<year>"}}, {"d": "2026-2026"}, True),
        # Identity escapes: \q is a q.
        ({"d": {"$regex": "^\\q$"}}, {"d": "q"}, True),
        # Non-strings are matched by their string form.
        ({"d": {"$regex": "^12"}}, {"d": 123}, True),
        ({"d": {"$regex": "^null$"}}, {}, True),
        # Python-only syntax is rejected, so it fails closed as JavaScript would.
        ({"d": {"$regex": "a++"}}, {"d": "aaa"}, False),
        ({"d": {"$regex": "(?P<x>a)"}}, {"d": "a"}, False),
        # Arrays are truthy and coerce through their string form.
        ({"d": True}, {"d": []}, True),
        ({"d": {"$gt": 5}}, {"d": [7]}, True),
        ({"d": "1,2"}, {"d": [1, 2]}, True),
        # Numbers print as JavaScript prints them.
        ({"d": "1"}, {"d": 1.0}, True),
        ({"d": "1e+21"}, {"d": 1e21}, True),
        ({"d": "1e-7"}, {"d": 1e-7}, True),
        # Strict membership: booleans are not numbers, and 1 equals 1.0.
        ({"d": {"$in": [1]}}, {"d": True}, False),
        ({"d": {"$in": [1]}}, {"d": 1.0}, True),
        # Path steps into arrays by index and length.
        ({"tags.1": "b"}, {"tags": ["a", "b"]}, True),
        ({"tags.length": 2}, {"tags": ["a", "b"]}, True),
        ({"tags.5": None}, {"tags": ["a", "b"]}, True),
        # A brace that makes no quantifier is a literal, never the regex package's fuzzy
        # matching ({e<=1}: one error allowed).
        ({"d": {"$regex": "^a{,5}$"}}, {"d": "a{,5}"}, True),
        ({"d": {"$regex": "^(?:abc){e<=1}$"}}, {"d": "abd"}, False),
        ({"d": {"$regex": "^\\p{L}$"}}, {"d": "p{L}"}, True),
        ({"d": {"$regex": "^a{2,}$"}}, {"d": "aaa"}, True),
        # String ordering is UTF-16 code unit order: an astral character sorts before U+FFFD.
        ({"d": {"$lt": "\ufffd"}}, {"d": "\U0001f600"}, True),
    ],
)
def test_javascript_semantics(condition: Any, attributes: Any, expected: bool) -> None:
    assert eval_condition(attributes, condition) is expected
    assert reference(attributes, condition) is expected


@pytest.mark.parametrize(
    ("condition", "problems"),
    [
        ({"name": {"$regx": "hello"}}, [("$.name.$regx", "a known operator")]),
        ({"name": {"$regex": "/???***[)"}}, [("$.name.$regex", "a valid regular expression")]),
        ({"name": {"$regex": 5}}, [("$.name.$regex", "a regular expression string")]),
        ({"n": {"$in": 1}}, [("$.n.$in", "an array, got 1")]),
        ({"n": {"$all": "x"}}, [("$.n.$all", "an array")]),
        ({"n": {"$eq": [1]}}, [("$.n.$eq", "a string, number, boolean or null")]),
        ({"n": {"$gt": None}}, [("$.n.$gt", "a number or a string")]),
        ({"n": {"$exists": "yes"}}, [("$.n.$exists", "true or false")]),
        ({"n": {"$type": "int"}}, [("$.n.$type", "one of string, number")]),
        ({"n": {"$size": "3"}}, [("$.n.$size", "a number or an object of operators")]),
        ({"n": {"$elemMatch": 3}}, [("$.n.$elemMatch", "an object")]),
        ({"n": {"$vgt": True}}, [("$.n.$vgt", "a version")]),
        ({"n": {"$gt": 1, "x": 2}}, [("$.n", "an object of operators only")]),
        ({"$or": {"a": 1}}, [("$.$or", "an array of conditions")]),
        ({"$not": [1]}, [("$.$not", "a condition object")]),
        ({"$groups": 1}, [("$.$groups", "an attribute path or one of $and")]),
        ({"id": {"$inGroup": "vip"}}, [("$.id.$inGroup", "the id of a saved group")]),
        ("age > 3", [("$", "an object of attribute paths")]),
        (
            {"$and": [{"a": {"$in": 1}}, {"triggers.paywall_view.7d": {"$gte": "x", "$bad": 1}}]},
            [
                ("$.$and[0].a.$in", "an array"),
                ('$.$and[1]["triggers.paywall_view.7d"].$bad', "a known operator"),
            ],
        ),
    ],
)
def test_mistakes_are_found_at_compile_time_with_their_path(
    condition: Any, problems: list[tuple[str, str]]
) -> None:
    with pytest.raises(ConditionError) as caught:
        compile_condition(condition, path="$")
    found = caught.value.problems
    assert [p.path for p in found] == [path for path, _ in problems]
    for problem, (_, expected) in zip(found, problems, strict=True):
        assert problem.expected.startswith("expected " + expected), problem
    assert isinstance(caught.value, ConfigError)


def test_problem_paths_start_at_the_given_path() -> None:
    with pytest.raises(ConditionError) as caught:
        compile_condition({"page.path": {"$regex": "("}}, path="$.rules[2].when")
    (problem,) = caught.value.problems
    assert problem.path == '$.rules[2].when["page.path"].$regex'
    assert str(caught.value) == str(problem)
    assert isinstance(problem, Problem)


def test_saved_groups_are_checked_and_used() -> None:
    is_vip = compile_condition({"id": {"$inGroup": "vip"}}, {"vip": ["a", "b"]})
    assert is_vip({"id": "a"}) is True
    assert is_vip({"id": "c"}) is False


def test_a_valid_condition_compiles_to_the_same_answers_as_eval_condition() -> None:
    for name, condition, attributes, expected, *_ in CASES:
        try:
            compiled = compile_condition(condition, {"group_id": [1, "2", 3]})
        except ConditionError:
            continue
        assert compiled(attributes) is expected, name


# --- property tests -------------------------------------------------------------------

KEYS = ["a", "b", "c", "0", "length"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1, 3),
    st.sampled_from([0.5, 2.0, -0.0, math.nan, math.inf]),
    st.sampled_from(["", "a", "A", "b", "10", "8", " 5 ", "1.2.3", "v1.2.3-beta", "abc", "0x1f",
                     "null", "true", "é", "\U0001f600", "\ue000", "1e3", "Infinity"]),
)  # fmt: skip
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)
    ),
    max_leaves=8,
)
paths = st.sampled_from(["a", "b", "a.b", "a.0", "b.length", "a.b.c", "c"])
regexes = st.sampled_from(
    ["^a", "b$", "(A|b)", "\\d", "^\\w+$", "[", "a++", "^$", "(?<n>a)\\k<n>", "."]
)
SIMPLE_OPS = ["$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$in", "$nin", "$ini", "$nini", "$all",
              "$alli", "$exists", "$type", "$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte",
              "$inGroup", "$notInGroup", "$unknown"]  # fmt: skip


def value_conditions(depth: int) -> st.SearchStrategy[Any]:
    """Bare values and operator objects, including malformed operands."""
    operand = st.one_of(
        documents, st.sampled_from(["string", "number", "array", "object", "null", "g"])
    )
    simple = st.tuples(st.sampled_from(SIMPLE_OPS), operand)
    regex = st.tuples(st.sampled_from(["$regex", "$regexi"]), st.one_of(regexes, scalars))
    parts = [simple, regex]
    if depth > 0:
        inner = value_conditions(depth - 1)
        parts += [
            st.tuples(st.just("$not"), inner),
            st.tuples(st.just("$size"), st.one_of(st.integers(0, 3), inner)),
            st.tuples(
                st.just("$elemMatch"),
                st.one_of(inner.filter(lambda v: isinstance(v, dict)), conditions(depth - 1)),
            ),
            st.tuples(st.sampled_from(["$all", "$alli"]), st.lists(inner, max_size=3)),
        ]
    operators = st.lists(st.one_of(*parts), min_size=1, max_size=3).map(dict)
    return st.one_of(documents, operators)


def conditions(depth: int) -> st.SearchStrategy[Any]:
    clause = st.tuples(paths, value_conditions(depth))
    parts: list[st.SearchStrategy[Any]] = [clause]
    if depth > 0:
        sub = st.lists(conditions(depth - 1), max_size=3)
        parts += [st.tuples(st.sampled_from(["$and", "$or", "$nor"]), sub),
                  st.tuples(st.just("$not"), conditions(depth - 1))]  # fmt: skip
    return st.lists(st.one_of(*parts), max_size=4).map(dict)


GROUPS = {"g": [1, "a", None, True]}


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    condition=conditions(2),
    document=st.fixed_dictionaries({}, optional=dict.fromkeys(KEYS, documents)),
)
def test_compiled_and_reference_evaluators_agree(condition: Any, document: Any) -> None:
    expected = reference(document, condition, GROUPS)
    assert eval_condition(document, condition, GROUPS) is expected
    try:
        compiled = compile_condition(condition, GROUPS)
    except ConditionError:
        return
    assert compiled(document) is expected


@settings(max_examples=300, deadline=None)
@given(
    document=st.recursive(
        st.one_of(scalars, st.floats(), st.text(max_size=5), st.integers()),
        lambda inner: st.one_of(st.lists(inner), st.dictionaries(st.text(max_size=3), inner)),
    )
)
def test_evaluation_never_raises_whatever_a_visitor_sends(document: Any) -> None:
    condition = {
        "a": {"$gt": 1, "$regex": "^x", "$in": ["a", 1], "$size": {"$gte": 0}},
        "a.b.c": {"$elemMatch": {"x": {"$vgte": "1.0"}}},
        "$or": [{"b": {"$type": "array"}}, {"c": {"$all": [{"$lt": "m"}]}}],
    }
    predicate = compile_condition(condition)
    for attributes in (document, {"a": document, "b": document, "c": document}):
        assert predicate(attributes) in (True, False)


def test_nan_is_never_equal_but_is_a_member() -> None:
    assert eval_condition({"x": math.nan}, {"x": {"$eq": math.nan}}) is False
    assert eval_condition({"x": math.nan}, {"x": {"$in": [math.nan]}}) is True


SMALL_VALUES = [None, True, False, 0, 1, 2, 2.0, -0.0, math.nan, "", "1", "2", "a", "A", "B",
                "\U0001f600", "\ufffd", "1.2.3", "1.2.3-rc", "v1.2.3", [], {}, [1], ["a", "B"],
                [None], {"a": 1}]  # fmt: skip
OPERANDS = [*SMALL_VALUES, [1, "a"], ["A", 2.0, None], [math.nan], "g", "^a", "B$", "[", "\\d",
            {"$gt": 0}, {"a": 1}, {"$in": ["a"]}]  # fmt: skip
OPERATORS_UNDER_TEST = [*SIMPLE_OPS, "$regex", "$regexi", "$size", "$not", "$elemMatch"]


def test_every_operator_agrees_with_the_reference_on_every_small_value() -> None:
    """Exhaustive over operator x operand x value: boundaries (2 vs 2.0, "" vs 0, NaN, astral
    characters, empty containers) are exactly where fast paths go wrong."""
    values = [*SMALL_VALUES, [1, 2], ["b", "A"], [{"a": 1}, 0]]
    disagreements = []
    for op in [*OPERATORS_UNDER_TEST, None]:
        for operand in OPERANDS:
            condition = {"x": operand} if op is None else {"x": {op: operand}}
            compiled = eval_condition  # compiles per call: fine for a test
            for value in values:
                document = {"x": value}
                if compiled(document, condition, GROUPS) is not reference(
                    document, condition, GROUPS
                ):
                    disagreements.append((condition, value))
    assert disagreements == []


def test_a_pathological_regex_over_a_visitor_title_answers_at_once_and_does_not_match() -> None:
    """``^(\\w+\\s?)*$`` backtracks exponentially on a title that almost matches: Python's
    ``re`` took seconds for 27 characters, stalling the whole server."""
    title_is_words = compile_condition({"page.title": {"$regex": "^(\\w+\\s?)*$"}})
    title = "Breakingnewsfromthenewsdesk!"  # 28 characters, the last one spoils the match
    start = time.perf_counter()
    assert title_is_words({"page": {"title": title}}) is False
    assert time.perf_counter() - start < 0.1
    assert title_is_words({"page": {"title": "Breaking news"}}) is True


def test_a_search_past_its_time_fails_closed_and_is_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``^(a|aa)+$`` has no nested quantifier but still backtracks exponentially: the
    per-search timeout, not the pattern check, is what bounds it."""
    caplog.set_level(logging.WARNING, "sitecue")
    before = REGEX_TIMEOUTS["timeouts-test"]
    only_as = compile_condition({"page.title": {"$regex": "^(a|aa)+$"}}, label="timeouts-test")
    start = time.perf_counter()
    for _ in range(3):
        assert only_as({"page": {"title": "a" * 40 + "!"}}) is False
    # Uncut, each search walks ~fib(40) = 1e8 paths (minutes); cut at 5 ms, three take
    # milliseconds. 5 s cannot be missed by a loaded machine, nor reached without the cut.
    assert time.perf_counter() - start < 5
    assert REGEX_TIMEOUTS["timeouts-test"] == before + 3
    logged = [r.getMessage() for r in caplog.records if "^(a|aa)+$" in r.getMessage()]
    assert len(logged) == 1 and "timeouts-test" in logged[0]
    assert only_as({"page": {"title": "aaaa"}}) is True


@pytest.mark.parametrize(
    ("pattern", "position"),
    [
        ("^(\\w+\\s?)*$", 1),
        ("(a*)+", 0),
        ("x(?:y+z){2,}", 1),
        ("((a+))+", 0),
        ("(a{2,})*", 0),
        ("(a+)?", None),  # repeated at most once
        ("(ab)+", None),  # nothing repeated inside
        ("(x{1,3})+", None),  # a bounded repetition inside
        ("[(]+a*", None),  # brackets in a class are not groups
        ("\\(a+\\)*", None),  # nor are escaped ones
        ("^/news/articles/", None),
    ],
)
def test_nested_quantifiers_are_found(pattern: str, position: int | None) -> None:
    assert nested_quantifier(pattern) == position


def test_a_nested_quantifier_is_a_warning_with_its_path_not_a_mistake() -> None:
    warnings: list[Problem] = []
    compile_condition(
        {"page.title": {"$regex": "^(\\w+\\s?)*$"}, "page.path": {"$regex": "^/a"}},
        path="$.rules[0].when",
        warnings=warnings,
    )
    (warning,) = warnings
    assert warning.path == '$.rules[0].when["page.title"].$regex'
    assert warning.expected.startswith("warning: the group at position 1 repeats a repetition")


@pytest.mark.parametrize(
    ("pattern", "repeating"),
    [
        ("^/articles/", False),
        ("^/(articles|news)/", False),
        ("(?:ab)(?=c)(?<name>d)", False),  # group syntax, not quantifiers
        ("[*+?{2}]", False),  # a class
        ("a{,2}", False),  # a literal brace in JavaScript
        ("\\(?", True),  # an optional literal parenthesis
        ("a?", True),
        ("a{2}", True),
        ("\\d+", True),
        ("(?:a)*", True),
    ],
)
def test_patterns_that_repeat_nothing_are_told_apart(pattern: str, repeating: bool) -> None:
    """Only a pattern that repeats something can backtrack; the others search untimed."""
    assert repeats(pattern) is repeating
