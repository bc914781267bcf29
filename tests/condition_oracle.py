"""A plain, interpreting port of GrowthBook's ``evalCondition``: the reference that the
compiled evaluator is checked against (and the baseline that bench/conditions.py beats).

It walks the condition on every call, exactly as GrowthBook's mongrule.ts does, and shares
only the JavaScript value semantics with the compiler. Structurally malformed logical
operands ($and/$or/$nor not an array, $not or $elemMatch not an object) fail closed, as the
compiler documents.
"""

from __future__ import annotations

from typing import Any

from sitecue._jsregex import RegexError, compile_js
from sitecue._jsvalues import (
    js_gt,
    js_gte,
    js_lt,
    js_lte,
    json_string,
    padded_version,
    same_value_zero,
    strict_equal,
    string_less,
    to_number,
    to_string,
    truthy,
    type_name,
)

_regex_cache: dict[tuple[str, bool], Any] = {}


def evaluate(obj: Any, condition: Any, groups: dict[str, list[Any]] | None = None) -> bool:
    groups = groups or {}
    if not isinstance(condition, dict):
        return False
    for key, value in condition.items():
        if key in ("$or", "$nor", "$and"):
            if not isinstance(value, list):
                return False
            if key == "$or":
                ok = not value or any(evaluate(obj, c, groups) for c in value)
            elif key == "$nor":
                ok = not (not value or any(evaluate(obj, c, groups) for c in value))
            else:
                ok = all(evaluate(obj, c, groups) for c in value)
            if not ok:
                return False
        elif key == "$not":
            if not isinstance(value, dict) or evaluate(obj, value, groups):
                return False
        elif not eval_value(value, get_path(obj, key), groups):
            return False
    return True


def get_path(obj: Any, path: str) -> Any:
    current = obj
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part == "length":
            current = len(current)
        elif (
            isinstance(current, list)
            and part.isascii()
            and part.isdigit()
            and (part == "0" or part[0] != "0")
        ):
            index = int(part)
            if index >= len(current):
                return None
            current = current[index]
        else:
            return None
    return current


def is_operator_object(v: Any) -> bool:
    return isinstance(v, dict) and len(v) > 0 and all(k.startswith("$") for k in v)


def eval_value(
    cond: Any, value: Any, groups: dict[str, list[Any]], insensitive: bool = False
) -> bool:
    if isinstance(cond, str):
        if insensitive:
            return to_string(value).lower() == cond.lower()
        return to_string(value) == cond
    if isinstance(cond, bool):
        return value is not None and truthy(value) == cond
    if isinstance(cond, int | float):
        return to_number(value) == cond
    if cond is None:
        return value is None
    if isinstance(cond, list) or not is_operator_object(cond):
        return json_string(value) == json_string(cond)
    return all(eval_operator(op, value, arg, groups) for op, arg in cond.items())


def is_in(actual: Any, expected: list[Any], insensitive: bool = False) -> bool:
    if insensitive:

        def fold(v: Any) -> Any:
            return v.lower() if isinstance(v, str) else v

        if isinstance(actual, list):
            return any(strict_equal(fold(a), fold(e)) for a in actual for e in expected)
        return any(strict_equal(fold(actual), fold(e)) for e in expected)
    if isinstance(actual, list):
        return any(same_value_zero(a, e) for a in actual for e in expected)
    return any(same_value_zero(actual, e) for e in expected)


def is_in_all(
    actual: Any, expected: list[Any], groups: dict[str, list[Any]], insensitive: bool
) -> bool:
    if not isinstance(actual, list):
        return False
    return all(any(eval_value(e, a, groups, insensitive) for a in actual) for e in expected)


def regex(pattern: str, insensitive: bool) -> Any:
    key = (pattern, insensitive)
    if key not in _regex_cache:
        try:
            _regex_cache[key] = compile_js(pattern, insensitive)
        except RegexError:
            _regex_cache[key] = None
    return _regex_cache[key]


def eval_operator(op: str, actual: Any, expected: Any, groups: dict[str, list[Any]]) -> bool:
    if op.startswith("$v") and op in ("$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte"):
        a, e = padded_version(actual), padded_version(expected)
        return {
            "$veq": a == e,
            "$vne": a != e,
            "$vgt": string_less(e, a),
            "$vgte": not string_less(a, e),
            "$vlt": string_less(a, e),
            "$vlte": not string_less(e, a),
        }[op]
    if op == "$eq":
        return strict_equal(actual, expected)
    if op == "$ne":
        return not strict_equal(actual, expected)
    if op == "$lt":
        return js_lt(actual, expected)
    if op == "$lte":
        return js_lte(actual, expected)
    if op == "$gt":
        return js_gt(actual, expected)
    if op == "$gte":
        return js_gte(actual, expected)
    if op == "$exists":
        return actual is not None if truthy(expected) else actual is None
    if op in ("$in", "$ini", "$nin", "$nini"):
        if not isinstance(expected, list):
            return False
        found = is_in(actual, expected, op.endswith("i"))
        return found if op in ("$in", "$ini") else not found
    if op in ("$inGroup", "$notInGroup"):
        found = is_in(actual, list(groups.get(to_string(expected), [])))
        return found if op == "$inGroup" else not found
    if op == "$not":
        return not eval_value(expected, actual, groups)
    if op == "$size":
        return isinstance(actual, list) and eval_value(expected, len(actual), groups)
    if op == "$elemMatch":
        if not isinstance(expected, dict) or not isinstance(actual, list):
            return False
        if is_operator_object(expected):
            return any(truthy(a) and eval_value(expected, a, groups) for a in actual)
        return any(truthy(a) and evaluate(a, expected, groups) for a in actual)
    if op in ("$all", "$alli"):
        return isinstance(expected, list) and is_in_all(actual, expected, groups, op == "$alli")
    if op in ("$regex", "$regexi"):
        if not isinstance(expected, str):
            return False
        compiled = regex(expected, op == "$regexi")
        return compiled is not None and compiled.search(to_string(actual)) is not None
    if op == "$type":
        return type_name(actual) == expected
    return False
