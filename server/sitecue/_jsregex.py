"""Run JavaScript regular expressions with the ``regex`` package, under a time limit.

Marketers write ``$regex`` patterns the way GrowthBook and the browser read them, and the two
dialects differ where it matters: JavaScript's ``$`` never matches before a trailing newline,
``.`` stops at every line terminator, ``\\d`` and ``\\w`` are ASCII-only, named groups are
``(?<name>…)``, and ``\\q`` is a plain ``q``. This module rewrites those constructs and refuses
syntax that JavaScript would reject but Python accepts (possessive quantifiers, ``(?P…)``,
atomic groups), so a pattern matches here exactly when it would in the browser. A brace
that does not make a quantifier is a literal, as in JavaScript (``a{,5}``, and never
``regex``'s fuzzy matching such as ``(?:abc){e<=1}``). Known gaps: ``\\b``, ``\\D``/``\\W``
inside a class and case-insensitive matching follow Python's Unicode rules.

The ``regex`` package runs the result because, unlike ``re``, it takes a ``timeout`` per
search: a marketer's pattern with nested quantifiers, such as ``^(a|aa)+$``, backtracks
exponentially on a long enough value, and a value is whatever a visitor sends.
:func:`nested_quantifier` finds such patterns so that ``sitecue check`` can warn about them.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import regex  # type: ignore[import-untyped]  # the package ships no type information

_HEX = set("0123456789abcdefABCDEF")
_ASCII_CLASSES = {"d": "0-9", "w": "A-Za-z0-9_"}
_SIMPLE_ESCAPES = set("sSbBfnrtv") | set(".^$|?*+()[]{}\\/-")
_ANY_BUT_LINE_END = "[^\n\r\u2028\u2029]"
_QUANTIFIER_BRACE = re.compile(r"\{[0-9]+(?:,[0-9]*)?\}")


class RegexError(ValueError):
    """A pattern that JavaScript would reject, or that Python cannot run the same way."""


def _escape(p: str, i: int, in_class: bool) -> tuple[str, int]:
    """Translate the escape starting at ``p[i] == "\\"``; return it and the next index."""
    if i + 1 >= len(p):
        raise RegexError("\\ at end of pattern")
    d = p[i + 1]
    j = i + 2
    if d in "dw":
        return (_ASCII_CLASSES[d] if in_class else f"[{_ASCII_CLASSES[d]}]"), j
    if d in "DW":
        return (f"\\{d}" if in_class else f"[^{_ASCII_CLASSES[d.lower()]}]"), j
    if d in _SIMPLE_ESCAPES:
        return "\\" + d, j
    if d == "c" and j < len(p) and p[j].isascii() and p[j].isalpha():
        return f"\\x{ord(p[j]) % 32:02x}", j + 1
    if d == "x" and set(p[j : j + 2]) <= _HEX and len(p[j : j + 2]) == 2:
        return "\\x" + p[j : j + 2], j + 2
    if d == "u" and set(p[j : j + 4]) <= _HEX and len(p[j : j + 4]) == 4:
        return "\\u" + p[j : j + 4], j + 4
    if d == "0" and not (j < len(p) and p[j].isdigit()):
        return "\\x00", j
    if d.isdigit():
        return "\\" + d, j  # a back-reference; Python rejects one to a missing group
    if d == "k" and j < len(p) and p[j] == "<":
        end = p.find(">", j)
        if end < 0:
            raise RegexError("unterminated \\k<name>")
        return f"(?P={p[j + 1 : end]})", end + 1
    # Any other escaped character stands for itself (JavaScript's identity escapes).
    return re.escape(d), j


def translate(pattern: str) -> str:
    """Rewrite a JavaScript pattern (no flags, or ``i``) into Python ``re`` syntax."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            piece, i = _escape(pattern, i, in_class)
            out.append(piece)
            continue
        if in_class:
            if c == "]":
                in_class = False
            out.append("\\" + c if c in "[&~|" else c)  # keep Python's set syntax out of it
        elif c == "[":
            if pattern.startswith("[]", i):
                out.append("(?!)")  # JavaScript's empty class matches nothing
                i += 2
                continue
            if pattern.startswith("[^]", i):
                out.append("[\\s\\S]")  # ... and its negation matches anything
                i += 3
                continue
            in_class = True
            head = "[^" if pattern.startswith("[^", i) else "["
            out.append(head)
            i += len(head)
            if i < n and pattern[i] == "]":
                raise RegexError("unterminated character class")
            continue
        elif c == "(" and pattern.startswith("(?", i):
            if pattern.startswith(("(?:", "(?=", "(?!", "(?<=", "(?<!"), i):
                out.append(pattern[i : i + 3])
                i += 3
                continue
            if pattern.startswith("(?<", i):
                out.append("(?P<")
                i += 3
                continue
            raise RegexError(f"unsupported group syntax at position {i}")
        elif c == "{":
            brace = _QUANTIFIER_BRACE.match(pattern, i)
            if brace is None:
                out.append("\\{")  # JavaScript's literal brace; never regex's fuzzy syntax
            else:
                out.append(brace.group())
                i = brace.end()
                continue
        elif c == "}":
            out.append("\\}")
        elif c == "$":
            out.append("\\Z")
        elif c == ".":
            out.append(_ANY_BUT_LINE_END)
        elif c == "+" and i > 0 and _ends_with_quantifier(pattern[:i]):
            raise RegexError(f"nothing to repeat at position {i}")
        else:
            out.append(c)
        i += 1
    if in_class:
        raise RegexError("unterminated character class")
    return "".join(out)


def _ends_with_quantifier(before: str) -> bool:
    """Whether a ``+`` after ``before`` would make Python read a possessive quantifier,
    which JavaScript rejects as "nothing to repeat"."""
    last = before[-1]
    if last in "*+?":
        backslashes = len(before) - 1 - len(before[:-1].rstrip("\\"))
        return backslashes % 2 == 0  # an escaped quantifier character is a literal
    if last == "}":
        brace = before.rfind("{")
        return brace >= 0 and bool(_QUANTIFIER_BRACE.fullmatch(before[brace:]))
    return False


def compile_js(pattern: str, ignore_case: bool = False) -> Any:
    """Compile a JavaScript pattern for ``RegExp.prototype.test``-style searching: the
    result is a ``regex`` pattern, whose ``search`` takes a ``timeout`` in seconds and
    raises ``TimeoutError`` past it."""
    translated = translate(pattern)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FutureWarnings about set syntax are not errors
            # VERSION0 reads patterns as ``re`` does (VERSION1 would add set operations).
            flags = regex.VERSION0 | (regex.IGNORECASE if ignore_case else 0)
            return regex.compile(translated, flags)
    except (regex.error, OverflowError, RecursionError) as err:
        raise RegexError(str(err)) from err


def repeats(pattern: str) -> bool:
    """Whether the pattern repeats anything (``*``, ``+``, ``?``, ``{n,m}``). One that does
    not costs at most its length per position of the value, so it needs no time limit,
    which costs more than such a search itself."""
    i, n = 0, len(pattern)
    in_class = after_paren = False  # a ? right after ( opens a group: (?: (?= (?<name>
    while i < n:
        c = pattern[i]
        if c == "\\":
            i, after_paren = i + 2, False
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif (c in "*+" or (c == "?" and not after_paren)) or (
            c == "{" and _QUANTIFIER_BRACE.match(pattern, i)
        ):
            return True
        after_paren = c == "(" and not in_class
        i += 1
    return False


def nested_quantifier(pattern: str) -> int | None:
    """The position of a repeated group that holds an unbounded repetition itself
    (``(\\w+\\s?)*``, ``(a*)+``, ``(?:x+y){2,}``): the shape that backtracks
    exponentially when a value almost matches. None when there is no such group."""
    starts: list[int] = []  # where each open group began
    unbounded: list[bool] = [False]  # per open group (and the whole pattern): holds one
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
            i += 1
            continue
        if c == "[":
            in_class = True
        elif c == "(":
            starts.append(i)
            unbounded.append(False)
        elif c == ")" and starts:
            start, inner = starts.pop(), unbounded.pop()
            repeat = _repetition(pattern, i + 1)
            if inner and repeat in ("unbounded", "bounded"):
                return start
            unbounded[-1] = unbounded[-1] or inner or repeat == "unbounded"
        elif c in "*+" or (c == "{" and _QUANTIFIER_BRACE.match(pattern, i)):
            unbounded[-1] = unbounded[-1] or _repetition(pattern, i) == "unbounded"
        i += 1
    return None


def _repetition(pattern: str, i: int) -> str:
    """What the quantifier at ``pattern[i]`` (if any) does: "unbounded" (``*``, ``+``,
    ``{n,}``), "bounded" (``{n,m}`` with m > 1), or "none" (``?``, ``{1}``, nothing)."""
    if i >= len(pattern):
        return "none"
    if pattern[i] in "*+":
        return "unbounded"
    brace = _QUANTIFIER_BRACE.match(pattern, i)
    if brace is None:
        return "none"
    low, _, high = brace.group()[1:-1].partition(",")
    if "," in brace.group() and not high:
        return "unbounded"
    return "bounded" if int(high or low) > 1 else "none"
