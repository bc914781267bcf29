"""Page data: what a page says about itself with ``sitecue('set', {...})``, for rules to read
as ``page.data.<key>``.

A site declares each key and its type (``"page_data": {"cart_value": "number"}``), so that
``sitecue check`` catches a misspelled ``page.data.*`` path and a page sending the wrong type
is told so. The values live for one page view (the tag sends them with each call); nothing
of them is kept in the state cookie. They are declared by the page, so by the visitor: usable
in this page view's rules, never trusted as what the site's systems said.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from .config import AttributeType
from .errors import BadRequest
from .protocol import MAX_VALUE

__all__ = ["MAX_STRING", "page_data"]

MAX_STRING = 256
"""The longest string a page-data value may be."""

_decode = msgspec.json.Decoder().decode


def _fits(kind: AttributeType, value: Any) -> bool:
    if kind == "boolean":
        return type(value) is bool
    if kind == "string":
        return type(value) is str and len(value) <= MAX_STRING
    if type(value) is not int and type(value) is not float:  # a bool is no number here
        return False
    # A plain comparison: exact for an int of any size (math.isfinite would overflow on a
    # 400-digit one), and false for NaN and the infinities.
    return -MAX_VALUE <= value <= MAX_VALUE


def page_data(declared: Mapping[str, AttributeType], sent: Mapping[str, Any]) -> dict[str, Any]:
    """The values of ``sent`` under the keys the site declares, each checked against its
    type; a key the site does not declare is left out unread (a page may set more than
    today's rules use, as it may send events no rule counts), and null means unset.
    Raises BadRequest naming the first key of a wrong type or size."""
    found: dict[str, Any] = {}
    for key, sent_value in sent.items():
        kind = declared.get(key)
        if kind is None:
            continue
        value = sent_value
        if isinstance(value, msgspec.Raw):
            try:
                value = _decode(value)
            except (msgspec.DecodeError, RecursionError):  # a number past a float's range…
                value = sent_value
        if value is None:
            continue
        if not _fits(kind, value):
            limit = {
                "number": f"a finite number within ±{MAX_VALUE:.0f}",
                "string": f"a string of at most {MAX_STRING} characters",
                "boolean": "true or false",
            }[kind]
            raw = isinstance(value, msgspec.Raw)
            shown = bytes(value).decode(errors="replace") if raw else repr(value)
            raise BadRequest(
                f"$.page.data.{key}: expected {limit}, as the site's page_data declares"
                f" {key!r} a {kind}; got {shown[:60]}"
            )
        found[key] = value
    return found
