"""Targeting conditions: GrowthBook's MongoDB-style language, compiled once into closures.

A condition is compiled when the site config loads; each page view only calls the result::

    >>> regular = compile_condition({"visitor.visits": {"$gte": 3},
    ...                              "page.path": {"$regex": "^/articles/"}})
    >>> regular({"visitor": {"visits": 4}, "page": {"path": "/articles/42"}})
    True

The behaviour is GrowthBook's, case for case (its SDK conformance suite passes): JavaScript
comparisons and coercions, a missing value behaving as null, an invalid regex failing closed.
``compile_condition`` is strict: an unknown operator or a malformed operand raises
:class:`~sitecue.errors.ConditionError` naming the JSON path of every mistake.
``eval_condition`` is GrowthBook's ``evalCondition``: such mistakes simply evaluate to false.
Evaluation never raises, whatever the attributes hold, and never takes long: a ``$regex``
search that runs past :data:`REGEX_TIMEOUT_S` stops, does not match, and is counted in
:data:`REGEX_TIMEOUTS`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from ._jsregex import RegexError, compile_js, nested_quantifier, repeats
from ._jsvalues import (
    NUMBER_TYPES,
    js_gt,
    js_gte,
    js_lt,
    js_lte,
    json_string,
    padded_version,
    strict_equal,
    string_less,
    to_number,
    to_string,
    truthy,
    type_name,
)
from .errors import ConditionError, Problem
from .metric_files import Tally

__all__ = [
    "OPERATORS",
    "REGEX_TIMEOUTS",
    "REGEX_TIMEOUT_S",
    "Predicate",
    "attribute_paths",
    "compile_condition",
    "eval_condition",
]

log = logging.getLogger("sitecue")

Predicate = Callable[[Any], bool]
"""A compiled condition (over the attribute mapping) or value test (over one value)."""

SavedGroups = Mapping[str, Collection[Any]]
"""Id lists by name for ``$inGroup``: GrowthBook's arrays, or (an audience's id list, see
:mod:`sitecue.audiences`) any collection of strings answering ``in``."""

Audiences = Callable[[Any, str], Predicate]
"""Resolves ``{"audience": name}`` (the name, the JSON path where it is named) to the
audience's compiled test over the whole context; see :mod:`sitecue.audiences`."""

LOGICAL_OPERATORS = ("$and", "$or", "$nor", "$not")
VALUE_OPERATORS = (
    "$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$in", "$nin", "$ini", "$nini", "$all", "$alli",
    "$elemMatch", "$size", "$exists", "$type", "$regex", "$regexi", "$not", "$inGroup",
    "$notInGroup", "$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte",
)  # fmt: skip
OPERATORS = frozenset(LOGICAL_OPERATORS + VALUE_OPERATORS)
TYPE_NAMES = ("string", "number", "boolean", "object", "array", "null")

REGEX_TIMEOUT_S = 0.005
"""How long one ``$regex`` may search one value. A sane pattern answers in microseconds
over the 16 KiB a request may carry; past this the clause fails closed (no match), so a
pattern that backtracks exponentially costs a visitor a few milliseconds, not the server
seconds."""

REGEX_TIMEOUTS: Tally[str] = Tally("sitecue_regex_timeouts_total")
"""Searches stopped at :data:`REGEX_TIMEOUT_S`, by the label the condition was compiled
with (a site's name); ``/metrics`` reports them. One event loop per process: no lock."""

_warned: set[tuple[str, str]] = set()  # (label, pattern): each is logged once per process

_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")


def compile_condition(
    condition: Any,
    saved_groups: SavedGroups | None = None,
    *,
    path: str = "$",
    label: str = "",
    warnings: list[Problem] | None = None,
    audiences: Audiences | None = None,
) -> Predicate:
    """Compile ``condition`` into a predicate over an attribute mapping.

    Raises ConditionError listing every unknown operator or malformed operand, each with its
    JSON path below ``path`` (give the condition's own path in the config file). What is
    valid but risky (a ``$regex`` with nested quantifiers) is appended to ``warnings``.
    ``label`` (the site) names the condition's regex timeouts in :data:`REGEX_TIMEOUTS`.
    With ``audiences``, a key ``audience`` (at any depth) names one, not an attribute path.
    """
    compiler = _Compiler(saved_groups, strict=True, label=label, audiences=audiences)
    predicate = compiler.condition(condition, path)
    if warnings is not None:
        warnings.extend(compiler.warnings)
    if compiler.problems:
        raise ConditionError(compiler.problems)
    return predicate


def eval_condition(
    attributes: Any, condition: Any, saved_groups: SavedGroups | None = None
) -> bool:
    """GrowthBook's ``evalCondition``: mistakes in the condition make it false, never raise."""
    return _Compiler(saved_groups, strict=False).condition(condition, "$")(attributes)


def attribute_paths(condition: Any, path: str = "$") -> list[tuple[str, str]]:
    """Every attribute path the condition reads, as (JSON path of the key, dotted path), so
    a config can check its references and keep only the data its rules use. Paths inside
    ``$elemMatch`` are relative to array elements and are not listed."""
    found: list[tuple[str, str]] = []
    if type(condition) is not dict:
        return found
    for key, value in condition.items():
        at = _child(path, key)
        if key in ("$and", "$or", "$nor") and type(value) is list:
            for i, sub in enumerate(value):
                found += attribute_paths(sub, _child(at, i))
        elif key == "$not":
            found += attribute_paths(value, at)
        elif not key.startswith("$"):
            found.append((at, key))
    return found


# --- small building blocks -------------------------------------------------------------


def _always(_: Any) -> bool:
    return True


def _never(_: Any) -> bool:
    return False


def _negate(p: Predicate) -> Predicate:
    return lambda x: not p(x)


def _all(preds: list[Predicate]) -> Predicate:
    """Conjunction, unrolled for the short lists that real conditions have."""
    if not preds:
        return _always
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda x: a(x) and b(x)
    if len(preds) == 3:
        a, b, c = preds
        return lambda x: a(x) and b(x) and c(x)
    every = tuple(preds)

    def conjunction(x: Any) -> bool:
        for p in every:  # noqa: SIM110 - a plain loop beats all() over a generator here
            if not p(x):
                return False
        return True

    return conjunction


def _any(preds: list[Predicate]) -> Predicate:
    if not preds:
        return _always  # GrowthBook: an empty $or passes
    if len(preds) == 1:
        return preds[0]
    some = tuple(preds)

    def disjunction(x: Any) -> bool:
        for p in some:  # noqa: SIM110 - a plain loop beats any() over a generator here
            if p(x):
                return True
        return False

    return disjunction


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENTIFIER.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_operator_object(value: Any) -> bool:
    return type(value) is dict and bool(value) and all(k.startswith("$") for k in value)


def _step(current: Any, key: str, index: int | None) -> Any:
    """One step of a dotted path, as GrowthBook's ``getPath``: own keys of objects, indexes
    and ``length`` of arrays; anything else is null."""
    t = type(current)
    if t is dict:
        return current.get(key)
    if t is list:
        if index is not None:
            return current[index] if index < len(current) else None
        return len(current) if key == "length" else None
    return None


def _getter(dotted: str) -> Callable[[Any], Any]:
    """A reader for ``dotted`` (``"triggers.paywall_view.7d"``), specialised by depth."""
    steps = tuple((k, int(k) if _ARRAY_INDEX.fullmatch(k) else None) for k in dotted.split("."))
    if len(steps) == 1:
        ((k1, i1),) = steps
        return lambda o: o.get(k1) if type(o) is dict else _step(o, k1, i1)
    if len(steps) == 2:
        (k1, i1), (k2, i2) = steps

        def get2(o: Any) -> Any:
            o = o.get(k1) if type(o) is dict else _step(o, k1, i1)
            return o.get(k2) if type(o) is dict else _step(o, k2, i2)

        return get2

    def get_n(o: Any) -> Any:
        for k, i in steps:
            o = o.get(k) if type(o) is dict else _step(o, k, i)
        return o

    return get_n


def _at_path(get: Callable[[Any], Any], test: Predicate) -> Predicate:
    return lambda x: test(get(x))


def _member_key(v: Any) -> Any:
    """A hashable stand-in for ``v`` under SameValueZero (booleans are not numbers, NaN
    equals NaN); arrays and objects get a fresh key, since JavaScript compares them by
    identity."""
    t = type(v)
    if t is bool:
        return (bool, v)
    if t is float and v != v:
        return (float, "NaN")
    if v is None or t is str or t is int or t is float:
        return v
    return object()


def _membership(expected: list[Any], fold: bool) -> Predicate:
    """``isIn``: the value is among ``expected``, or for an array, shares an element with it.
    ``fold`` lowercases strings on both sides ($ini/$nini)."""
    if fold:
        folded = [e.lower() if type(e) is str else e for e in expected]

        def contains(x: Any) -> bool:
            x = x.lower() if type(x) is str else x
            return any(strict_equal(x, e) for e in folded)
    else:
        keys = frozenset(_member_key(e) for e in expected)
        strings = frozenset(e for e in expected if type(e) is str)

        def contains(x: Any) -> bool:
            if type(x) is str:
                return x in strings
            return _member_key(x) in keys

    def is_in(v: Any) -> bool:
        if type(v) is list:
            return any(contains(x) for x in v)
        return contains(v)

    return is_in


def _group_membership(group: Collection[Any]) -> Predicate:
    """``$inGroup``: GrowthBook's ``isIn`` over a saved group. A list or tuple is an array
    (JavaScript equality); any other collection is an id list, which holds strings only."""
    if isinstance(group, (list, tuple)):
        return _membership(list(group), fold=False)

    def is_in(v: Any) -> bool:
        if type(v) is list:
            return any(type(x) is str and x in group for x in v)
        return type(v) is str and v in group

    return is_in


def _relation(op: str, expected: Any) -> Predicate:
    """``< <= > >=`` with JavaScript's coercions, with a fast path for the usual operand
    types (numbers vs numbers, strings vs strings)."""
    general = {"$lt": js_lt, "$lte": js_lte, "$gt": js_gt, "$gte": js_gte}[op]
    t = type(expected)
    if t is int or t is float:
        fast: Callable[[Any, Any], bool] = {
            "$lt": lambda a, b: a < b, "$lte": lambda a, b: a <= b,
            "$gt": lambda a, b: a > b, "$gte": lambda a, b: a >= b,
        }[op]  # fmt: skip
        return lambda v: fast(v, expected) if type(v) in NUMBER_TYPES else general(v, expected)
    if t is str and not any(ch >= "\ue000" for ch in expected):
        # Without such characters in the operand, code-point order is UTF-16 order.
        fast = {
            "$lt": lambda a, b: a < b, "$lte": lambda a, b: a <= b,
            "$gt": lambda a, b: a > b, "$gte": lambda a, b: a >= b,
        }[op]  # fmt: skip
        return lambda v: fast(v, expected) if type(v) is str else general(v, expected)
    return lambda v: general(v, expected)


def _version(op: str, expected: Any) -> Predicate:
    target = padded_version(expected)
    if op == "$veq":
        return lambda v: padded_version(v) == target
    if op == "$vne":
        return lambda v: padded_version(v) != target
    if op == "$vgt":
        return lambda v: string_less(target, padded_version(v))
    if op == "$vgte":
        return lambda v: not string_less(padded_version(v), target)
    if op == "$vlt":
        return lambda v: string_less(padded_version(v), target)
    return lambda v: not string_less(target, padded_version(v))  # $vlte


def _regex_test(pattern: Any, label: str, source: str) -> Predicate:
    """A value test by a compiled pattern: the value's string form is searched for at most
    :data:`REGEX_TIMEOUT_S`; a search cut off there is no match (failing closed: a rule
    never shows because a visitor sent a value that a pattern chokes on)."""
    search = pattern.search
    if not repeats(source):  # linear at worst, and the timer costs more than the search
        return lambda v: search(v if type(v) is str else to_string(v)) is not None

    def matches(v: Any) -> bool:
        try:
            text = v if type(v) is str else to_string(v)
            return search(text, timeout=REGEX_TIMEOUT_S) is not None
        except TimeoutError:
            REGEX_TIMEOUTS[label] += 1
            if (label, source) not in _warned:
                _warned.add((label, source))
                log.warning(
                    "$regex %r%s ran past %g ms and did not match; it is cut off so each time",
                    source, f" of site {label}" if label else "", REGEX_TIMEOUT_S * 1000,
                )  # fmt: skip
            return False

    return matches


def _strict_eq(expected: Any) -> Predicate:
    t = type(expected)
    if expected is None or t is bool:
        return lambda v: v is expected
    if t is str:
        return lambda v: type(v) is str and v == expected
    if t is int or t is float:
        return lambda v: type(v) in NUMBER_TYPES and v == expected
    return lambda v: strict_equal(v, expected)


class _Compiler:
    """Walks one condition, building closures and noting every problem with its path."""

    def __init__(
        self,
        saved_groups: SavedGroups | None,
        strict: bool,
        label: str = "",
        audiences: Audiences | None = None,
    ) -> None:
        self.saved_groups = saved_groups or {}
        self.strict = strict
        self.label = label
        self.audiences = audiences
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def problem(self, path: str, expected: str, got: Any) -> Predicate:
        """Record a mistake; what it compiles to is GrowthBook's answer to it: false."""
        self.problems.append(Problem(path, f"expected {expected}, got {_show(got)}"))
        return _never

    # A condition over the attribute mapping: paths and logical operators, ANDed.
    def condition(self, cond: Any, path: str) -> Predicate:
        if type(cond) is not dict:
            return self.problem(path, "an object of attribute paths and $and/$or/$nor/$not", cond)
        preds = []
        for key, value in cond.items():
            at = _child(path, key)
            if key in ("$or", "$nor", "$and"):
                if type(value) is not list:  # the whole clause fails closed
                    preds.append(self.problem(at, "an array of conditions", value))
                    continue
                subs = [self.condition(c, _child(at, i)) for i, c in enumerate(value)]
                if key == "$and":
                    preds.append(_all(subs))
                else:
                    preds.append(_any(subs) if key == "$or" else _negate(_any(subs)))
            elif key == "$not":
                if type(value) is not dict:
                    preds.append(self.problem(at, "a condition object", value))
                    continue
                preds.append(_negate(self.condition(value, at)))
            elif key == "audience" and self.audiences is not None:
                preds.append(self.audiences(value, at))
            else:
                if key.startswith("$") and self.strict:
                    self.problem(at, "an attribute path or one of $and, $or, $nor, $not", key)
                preds.append(_at_path(_getter(key), self.value(value, at)))
        return _all(preds)

    # A test of one value: a bare value to compare with, or an object of operators.
    def value(self, cond: Any, path: str, fold: bool = False) -> Predicate:
        t = type(cond)
        if t is str:
            if fold:
                lowered = cond.lower()
                return lambda v: to_string(v).lower() == lowered
            return lambda v: v == cond if type(v) is str else to_string(v) == cond
        if t is bool:
            return lambda v: v is not None and truthy(v) is cond
        if t is int or t is float:
            return lambda v: (v if type(v) in NUMBER_TYPES else to_number(v)) == cond
        if cond is None:
            return lambda v: v is None
        if not _is_operator_object(cond):
            if t is dict and any(k.startswith("$") for k in cond):
                self.problem(path, "an object of operators only, or a value without $ keys", cond)
            if t is not dict and t is not list:
                return self.problem(path, "a JSON value", cond)
            literal = json_string(cond)
            return lambda v: json_string(v) == literal
        return _all([self.operator(op, arg, _child(path, op)) for op, arg in cond.items()])

    def operator(self, op: str, arg: Any, path: str) -> Predicate:
        if op in ("$eq", "$ne"):
            if type(arg) in (list, dict):
                self.problem(path, "a string, number, boolean or null (write an array or "
                             "object bare to compare it whole)", arg)  # fmt: skip
            eq = _strict_eq(arg)
            return eq if op == "$eq" else _negate(eq)
        if op in ("$lt", "$lte", "$gt", "$gte"):
            if type(arg) not in (str, int, float):
                self.problem(path, "a number or a string", arg)
            return _relation(op, arg)
        if op in ("$in", "$nin", "$ini", "$nini"):
            if type(arg) is not list:
                return self.problem(path, "an array", arg)  # both $in and $nin fail
            is_in = _membership(arg, fold=op.endswith("i"))
            return is_in if op in ("$in", "$ini") else _negate(is_in)
        if op in ("$inGroup", "$notInGroup"):
            if type(arg) is not str or (self.strict and arg not in self.saved_groups):
                known = ", ".join(self.saved_groups) or "none are defined"
                self.problem(path, f"the id of a saved group ({known})", arg)
            group = self.saved_groups.get(to_string(arg), [])
            is_in = _group_membership(group)
            return is_in if op == "$inGroup" else _negate(is_in)
        if op == "$not":
            return _negate(self.value(arg, path))
        if op == "$exists":
            if type(arg) is not bool:
                self.problem(path, "true or false", arg)
            return (lambda v: v is not None) if truthy(arg) else (lambda v: v is None)
        if op == "$type":
            if arg not in TYPE_NAMES:
                self.problem(path, "one of " + ", ".join(TYPE_NAMES), arg)
            return lambda v: type_name(v) == arg
        if op == "$size":
            if type(arg) not in NUMBER_TYPES and not _is_operator_object(arg):
                self.problem(path, "a number or an object of operators", arg)
            size_ok = self.value(arg, path)
            return lambda v: type(v) is list and size_ok(len(v))
        if op == "$elemMatch":
            if type(arg) is not dict:
                return self.problem(path, "an object of operators or a condition", arg)
            check = self.value(arg, path) if _is_operator_object(arg) else self.condition(arg, path)
            # GrowthBook skips falsy elements (0, "", false, null).
            return lambda v: type(v) is list and any(truthy(x) and check(x) for x in v)
        if op in ("$all", "$alli"):
            if type(arg) is not list:
                return self.problem(path, "an array", arg)
            fold = op == "$alli"
            wanted = [self.value(item, _child(path, i), fold) for i, item in enumerate(arg)]
            return lambda v: type(v) is list and all(any(w(x) for x in v) for w in wanted)
        if op in ("$regex", "$regexi"):
            if type(arg) is not str:
                return self.problem(path, "a regular expression string", arg)
            try:
                pattern = compile_js(arg, ignore_case=op == "$regexi")
            except RegexError as err:
                return self.problem(path, f"a valid regular expression ({err})", arg)
            at = nested_quantifier(arg)
            if at is not None:
                self.warnings.append(
                    Problem(
                        path,
                        f"warning: the group at position {at} repeats a repetition, which "
                        "can take exponential time on a value that almost matches; such a "
                        f"search stops after {REGEX_TIMEOUT_S * 1000:g} ms and does not match "
                        f"(got {_show(arg)})",
                    )
                )
            return _regex_test(pattern, self.label, arg)
        if op in ("$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte"):
            if type(arg) not in (str, int, float):
                self.problem(path, 'a version such as "1.2.3"', arg)
            return _version(op, arg)
        known = ", ".join(sorted(set(VALUE_OPERATORS)))
        return self.problem(path, f"a known operator ({known})", op)
