"""Run JavaScript regular expressions with Python's ``re``.

Marketers write ``$regex`` patterns the way GrowthBook and the browser read them, and the two
dialects differ where it matters: JavaScript's ``$`` never matches before a trailing newline,
``.`` stops at every line terminator, ``\\d`` and ``\\w`` are ASCII-only, named groups are
``(?<name>…)``, and ``\\q`` is a plain ``q``. This module rewrites those constructs and refuses
syntax that JavaScript would reject but Python accepts (possessive quantifiers, ``(?P…)``,
atomic groups), so a pattern matches here exactly when it would in the browser. Known gaps:
``\\b``, ``\\D``/``\\W`` inside a class and case-insensitive matching follow Python's Unicode
rules; variable-width lookbehinds are refused.
"""

from __future__ import annotations

import re
import warnings

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


def compile_js(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """Compile a JavaScript pattern for ``RegExp.prototype.test``-style searching."""
    translated = translate(pattern)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FutureWarnings about set syntax are not errors
            return re.compile(translated, re.IGNORECASE if ignore_case else 0)
    except (re.error, OverflowError, RecursionError) as err:
        raise RegexError(str(err)) from err
