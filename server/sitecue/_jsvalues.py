"""JavaScript value semantics, which GrowthBook's condition language inherits.

GrowthBook evaluates conditions in JavaScript, so ``"8" > 5`` holds, a missing value acts as
0 in a comparison, ``[]`` is truthy and object equality is ``JSON.stringify`` equality. These
helpers reproduce exactly that on JSON-shaped Python values (None, bool, int, float, str,
list, dict); any other Python object behaves like a plain JavaScript object.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

NUMBER_TYPES = (int, float)  # never bool: type(True) is bool, so `type(v) in NUMBER_TYPES` skips it

# What String.prototype.trim removes, and so what Number("  8 ") ignores.
_JS_WHITESPACE = (
    " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_DECIMAL = re.compile(r"[+-]?(?:Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
_RADIX = re.compile(r"0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_VERSION_PREFIX = re.compile("^v|\\+[^\n\r\u2028\u2029]*\\Z")
_VERSION_SPLIT = re.compile(r"[-.]")


def truthy(v: Any) -> bool:
    """``!!v``: unlike Python, empty arrays and objects are true and NaN is false."""
    t = type(v)
    if t is bool:
        return bool(v)
    if t is int or t is float:
        return bool(v == v and v != 0)
    if t is str:
        return bool(v != "")
    return v is not None


def type_name(v: Any) -> str:
    """GrowthBook's ``$type`` names."""
    if v is None:
        return "null"
    t = type(v)
    if t is bool:
        return "boolean"
    if t is int or t is float:
        return "number"
    if t is str:
        return "string"
    if t is list:
        return "array"
    return "object"


def number_to_string(x: float | int) -> str:
    """``String(x)`` for a number: ``1.0`` is ``"1"``, ``1e21`` is ``"1e+21"``, ``1e-7`` is
    ``"1e-7"``. Python's repr gives the same shortest digits; only the layout differs."""
    if type(x) is int and abs(x) < 10**21:
        return str(x)
    x = float(x)
    if x != x:
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    mantissa, _, exp = repr(abs(x)).partition("e")
    whole, _, frac = mantissa.partition(".")
    all_digits = whole + frac
    point = len(whole) + (int(exp) if exp else 0)  # value = 0.<all_digits> × 10^point
    stripped = all_digits.lstrip("0")
    point -= len(all_digits) - len(stripped)
    digits = stripped.rstrip("0")
    k, n = len(digits), point
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = f"{digits[:n]}.{digits[n:]}"
    elif -6 < n <= 0:
        body = "0." + "0" * -n + digits
    else:
        e = n - 1
        head = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
        body = f"{head}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + body


def to_string(v: Any) -> str:
    """``String(v)``, with missing values as ``"null"`` (GrowthBook never sees undefined)."""
    t = type(v)
    if t is str:
        return str(v)
    if v is None:
        return "null"
    if t is bool:
        return "true" if v else "false"
    if t is int or t is float:
        return number_to_string(v)
    if t is list:
        return ",".join("" if x is None else to_string(x) for x in v)
    return "[object Object]"


def _string_to_number(s: str) -> float | int:
    s = s.strip(_JS_WHITESPACE)
    if not s:
        return 0
    if _DECIMAL.fullmatch(s):
        return float(s.replace("Infinity", "inf"))
    if _RADIX.fullmatch(s):
        return int(s[2:], {"x": 16, "o": 8, "b": 2}[s[1].lower()])
    return math.nan


def to_number(v: Any) -> float | int:
    """``Number(v)``: null is 0, booleans are 0/1, strings parse strictly (else NaN)."""
    t = type(v)
    if t is int or t is float:
        return v  # type: ignore[no-any-return]
    if t is bool:
        return int(v)
    if v is None:
        return 0
    if t is str:
        return _string_to_number(v)
    if t is list:
        return _string_to_number(to_string(v))
    return math.nan


def to_primitive(v: Any) -> Any:
    """What ``<`` sees of an array or object: its string form."""
    t = type(v)
    if t is list or t is dict or not (v is None or t in (str, bool, int, float)):
        return to_string(v)
    return v


def _is_array_index(key: str) -> bool:
    return (
        key.isascii() and key.isdigit() and (key == "0" or key[0] != "0") and int(key) < 2**32 - 1
    )


def json_string(v: Any) -> str:
    """``JSON.stringify(v)``, including JavaScript's key order (integer-like keys first)."""
    t = type(v)
    if v is None:
        return "null"
    if t is bool:
        return "true" if v else "false"
    if t is int or t is float:
        return number_to_string(v) if math.isfinite(v) else "null"
    if t is str:
        return json.dumps(v, ensure_ascii=False)
    if t is list:
        return "[" + ",".join(json_string(x) for x in v) + "]"
    if t is dict:
        keys = list(v)
        if any(_is_array_index(k) for k in keys):
            index_keys = sorted((k for k in keys if _is_array_index(k)), key=int)
            keys = index_keys + [k for k in keys if not _is_array_index(k)]
        return (
            "{"
            + ",".join(json.dumps(k, ensure_ascii=False) + ":" + json_string(v[k]) for k in keys)
            + "}"
        )
    return "{}"


def strict_equal(a: Any, b: Any) -> bool:
    """``a === b``. Arrays and objects compare by identity in JavaScript, and two values
    decoded from JSON are never the same object, so they are never equal here."""
    ta, tb = type(a), type(b)
    if ta is bool or tb is bool:
        return ta is tb and a == b
    if ta in NUMBER_TYPES and tb in NUMBER_TYPES:
        return bool(a == b)
    if ta is str and tb is str:
        return bool(a == b)
    return a is None and b is None


def same_value_zero(a: Any, b: Any) -> bool:
    """``[b].includes(a)``: strict equality, except that NaN equals NaN."""
    if type(a) is float and type(b) is float and a != a and b != b:
        return True
    return strict_equal(a, b)


def string_less(a: str, b: str) -> bool:
    """JavaScript orders strings by UTF-16 code units; Python by code points. The two differ
    only when a character outside the BMP meets one in U+E000–U+FFFF."""
    if _ASTRAL.search(a) or _ASTRAL.search(b):
        return a.encode("utf-16-be", "surrogatepass") < b.encode("utf-16-be", "surrogatepass")
    return a < b


def less_than(a: Any, b: Any) -> bool | None:
    """The abstract relational comparison ``a < b``; None stands for JavaScript's undefined
    (a NaN was involved), which makes every one of ``< <= > >=`` false."""
    pa, pb = to_primitive(a), to_primitive(b)
    if type(pa) is str and type(pb) is str:
        return string_less(pa, pb)
    na, nb = to_number(pa), to_number(pb)
    if na != na or nb != nb:
        return None
    return na < nb


def js_lt(a: Any, b: Any) -> bool:
    return less_than(a, b) is True


def js_gt(a: Any, b: Any) -> bool:
    return less_than(b, a) is True


def js_lte(a: Any, b: Any) -> bool:
    return less_than(b, a) is False


def js_gte(a: Any, b: Any) -> bool:
    return less_than(a, b) is False


def padded_version(v: Any) -> str:
    """GrowthBook's version normalisation: ``v1.2.3+build`` becomes ``"    1-    2-    3-~"``,
    so that versions compare as plain strings and a release sorts after its prereleases."""
    if type(v) in NUMBER_TYPES:
        v = to_string(v)
    if not v or type(v) is not str:
        v = "0"
    parts = _VERSION_SPLIT.split(_VERSION_PREFIX.sub("", v))
    if len(parts) == 3:
        parts.append("~")
    return "-".join(p.rjust(5) if p.isascii() and p.isdigit() else p for p in parts)
