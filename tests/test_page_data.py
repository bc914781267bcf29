"""Page data: what a page sets with sitecue('set', ...), checked against the site's
declaration, each mistake named by its key; undeclared keys left out unread."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from sitecue.errors import BadRequest
from sitecue.page_data import page_data

DECLARED: dict[str, Any] = {"cart_value": "number", "logged_in": "boolean", "category": "string"}


def raw(value: Any) -> msgspec.Raw:
    return msgspec.Raw(msgspec.json.encode(value))


def test_declared_keys_of_their_type_are_read_and_the_rest_left_out() -> None:
    sent = {"cart_value": raw(520), "logged_in": raw(True), "category": raw("cameras"),
            "basket": raw({"deep": [1, 2, 3]}), "coupon": raw(None)}  # fmt: skip
    assert page_data(DECLARED, sent) == {
        "cart_value": 520,
        "logged_in": True,
        "category": "cameras",
    }
    assert page_data(DECLARED, {"cart_value": raw(None)}) == {}  # null: unset
    assert page_data(DECLARED, {"cart_value": 59.9}) == {"cart_value": 59.9}  # decoded values


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "cart_value",
            b'"520"',
            "$.page.data.cart_value: expected a finite number within ±1000000000",
        ),
        ("cart_value", b"true", "$.page.data.cart_value: expected a finite number"),
        ("cart_value", b"1e10", "$.page.data.cart_value: expected a finite number"),
        ("cart_value", b"1e400", "$.page.data.cart_value: expected a finite number"),
        ("cart_value", b"1" + b"0" * 400, "$.page.data.cart_value: expected a finite number"),
        ("cart_value", b"[520]", "$.page.data.cart_value: expected a finite number"),
        ("logged_in", b"1", "$.page.data.logged_in: expected true or false"),
        ("category", b'"' + b"x" * 257 + b'"', "$.page.data.category: expected a string of at"),
        ("category", b"5", "$.page.data.category: expected a string of at most 256 characters"),
    ],
)
def test_a_wrong_value_is_refused_naming_its_key(key: str, value: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        page_data(DECLARED, {key: msgspec.Raw(value)})
    assert str(caught.value).startswith(message), caught.value
