"""Request bodies: whatever arrives, every endpoint that takes a body answers a 4xx naming
what was wrong, never a 500. A fixed, seeded corpus of malformed bodies is sent to each."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from admin_keys import ORIGIN, new_key
from sitecue.api.bodies import decode, utf8_error
from sitecue.app import build_app
from sitecue.errors import BadRequest
from sitecue.protocol import DecideRequest
from sitecue.settings import Settings

# One well-formed body of each kind sitecue takes; the corpus breaks each of them.
DECIDE = {
    "site": "news",
    "page": {"url": "https://news.example/news/", "title": "T", "viewport": "mobile"},
    "events": [{"name": "paywall_view", "at": 1764000000000}],
    "consent": True,
}
EVENTS = {
    "site": "news",
    "events": [{"type": "impression", "decision": "d-1", "rule": "newsletter", "variant": "short",
                "at": 1764000000000}],
}  # fmt: skip
TOKENS = {"site": "shop", "contacts": ["c-1", "c-2"], "ttl": "1d"}
CONTACT = {"attributes": {"customer": True, "loyalty_tier": "gold", "avg_order_value": 87.5}}
TEMPLATES: list[Any] = [DECIDE, EVENTS, TOKENS, CONTACT]
NDJSON = b'{"id": "c-1", "attributes": {"customer": true}}\n"c-2"\n'
CSV = b"id,customer,loyalty_tier,avg_order_value\nc-1,true,gold,87.5\n"
FORM = b"key=sck_000000000000_" + b"a" * 32

JSON_TYPES = ["application/json", "text/plain;charset=UTF-8", None]
CONTENT_TYPES = [
    *JSON_TYPES,
    "text/csv",
    "application/x-ndjson",
    "application/x-www-form-urlencoded",
    "application/xml",
    "multipart/form-data; boundary=x",
    "text/csv-schema",
    "application/json; charset=utf-16",
]
BAD_UTF8 = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8\x88\x80\x80\x80", b"\x80"]
HUGE = ["1e400", "-1e400", "1e-400", "9" * 400, "-" + "9" * 30, "18446744073709551616",
        "9007199254740993", "0.1e99999"]  # fmt: skip
NON_FINITE = ["NaN", "Infinity", "-Infinity", "nan", "inf"]
WRONG = [None, True, 0, -1, 1.5, "", "x" * 3000, [], {}, [1, 2], {"a": None}]
MARK = "@@MARK@@"

Body = tuple[str, bytes, str | None]  # (what it is, the bytes, the content type)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every (path, value) in ``value``, containers included."""
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


def _with_raw(template: Any, path: tuple[Any, ...], raw: bytes) -> bytes:
    """``template`` as JSON with the value at ``path`` replaced by the literal ``raw``."""
    return json.dumps(_replaced(template, path, MARK)).encode().replace(f'"{MARK}"'.encode(), raw)


def _nested(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


def corpus() -> list[Body]:
    """A few hundred malformed bodies, the same on every run (seeded)."""
    rng = random.Random(13)
    bodies: list[Body] = []
    encoded = [json.dumps(t).encode() for t in TEMPLATES]
    originals = [*encoded, NDJSON, CSV, FORM]
    for i, body in enumerate(originals):  # well-formed, sent as every kind of content
        for kind in CONTENT_TYPES:
            bodies.append((f"template {i} as {kind}", body, kind))
    for i, template in enumerate(TEMPLATES):
        strings = [p for p, v in _leaves(template) if isinstance(v, str)]
        numbers = [p for p, v in _leaves(template) if isinstance(v, int | float)] or [("x",)]
        everything = [p for p, _ in _leaves(template) if p]
        for bad in BAD_UTF8:  # invalid UTF-8 inside a JSON string
            path = rng.choice(strings)
            raw = b'"ok' + bad + b'ok"'
            bodies.append(
                (
                    f"invalid UTF-8 {bad!r} at {path}",
                    _with_raw(template, path, raw),
                    rng.choice(JSON_TYPES),
                )
            )
        for literal in HUGE:
            path = rng.choice(numbers)
            body = _with_raw(template, path, literal.encode())
            bodies.append((f"number {literal[:12]} at {path}", body, "application/json"))
        for literal in NON_FINITE:
            path = rng.choice(numbers)
            bodies.append(
                (
                    f"{literal} at {path}",
                    _with_raw(template, path, literal.encode()),
                    "application/json",
                )
            )
        for _ in range(10):  # wrong types
            path, new = rng.choice(everything), rng.choice(WRONG)
            body = json.dumps(_replaced(template, path, new)).encode()
            bodies.append((f"{new!r:.12} at {path}", body, "application/json"))
        for depth in (900, 1000, 3000):  # deep nesting inside a field
            for kind in ("array", "object"):
                body = _with_raw(template, ("x",), _nested(depth, kind))
                bodies.append((f"{kind} nested {depth} deep in template {i}", body, None))
        for _ in range(6):  # truncated
            body = encoded[i][: rng.randrange(len(encoded[i]))]
            bodies.append((f"template {i} cut at {len(body)}", body, rng.choice(JSON_TYPES)))
        first = next(iter(template))  # duplicate keys: the second one differs
        duplicated = encoded[i].replace(b"{", b'{"' + first.encode() + b'": 5, ', 1)
        bodies.append((f"duplicate key {first}", duplicated, "application/json"))
        bodies.append(
            (f"template {i} after a UTF-8 BOM", b"\xef\xbb\xbf" + encoded[i], "application/json")
        )
        for codec in ("utf-16-le", "utf-16", "utf-32"):
            bodies.append(
                (f"template {i} in {codec}", json.dumps(template).encode(codec), "application/json")
            )
        for _ in range(5):  # a few bytes changed at random
            body = bytearray(encoded[i])
            for _ in range(rng.randint(1, 4)):
                body[rng.randrange(len(body))] = rng.randrange(256)
            bodies.append((f"template {i} with bytes flipped", bytes(body), rng.choice(JSON_TYPES)))
    for depth in (64, 500, 900, 1000, 2000, 5000, 8000):  # deep nesting as the whole body
        for kind in ("array", "object"):
            bodies.append((f"{kind} nested {depth} deep", _nested(depth, kind), "application/json"))
    for empty in (b"", b" ", b"\n", b"null", b"{}", b"[]", b"0", b'""', b"\x00"):
        for kind in ("application/json", "text/plain;charset=UTF-8"):
            bodies.append((f"empty-ish {empty!r}", empty, kind))
    for size in (1, 2, 7, 16, 64, 200, 1000, 4000):
        bodies.append((f"{size} random bytes", rng.randbytes(size), rng.choice(CONTENT_TYPES)))
    for literal in NON_FINITE + HUGE[:3]:  # customer lists with numbers no JSON can carry
        cell = b"id,avg_order_value\nc-1," + literal.encode() + b"\n"
        bodies.append((f"CSV cell {literal}", cell, "text/csv"))
        ndjson = b'{"id": "c-1", "attributes": {"avg_order_value": ' + literal.encode() + b"}}\n"
        bodies.append((f"NDJSON {literal}", ndjson, "application/x-ndjson"))
    for bad in BAD_UTF8:
        bodies.append((f"CSV with {bad!r}", b"id,loyalty_tier\nc-1,go" + bad + b"ld\n", "text/csv"))
        ids = b'"c-1"\n"c-' + bad + b'"\n'
        bodies.append((f"NDJSON with {bad!r}", ids, "application/x-ndjson"))
        bodies.append((f"form with {bad!r}", b"key=" + bad, "application/x-www-form-urlencoded"))
    for depth in (1000, 5000):
        bodies.append(
            (
                f"NDJSON line nested {depth}",
                b'"c-1"\n' + _nested(depth, "array"),
                "application/x-ndjson",
            )
        )
    bodies.append(("CSV after a BOM", b"\xef\xbb\xbf" + CSV, "text/csv"))
    bodies.append(("CSV with a NUL", b"id,customer\nc-\x001,true\n", "text/csv"))
    bodies.append(("CSV with a 200 KB cell", b"id,loyalty_tier\nc-1," + b"g" * 200_000, "text/csv"))
    bodies.append(("CSV unclosed quote", b'id,loyalty_tier\nc-1,"gold\n', "text/csv"))
    bodies.append(("over 16 KiB", json.dumps({**DECIDE, "x": "y" * 17_000}).encode(), None))
    return bodies


@pytest.fixture
def fuzz_client(env: dict[str, str]) -> Iterator[TestClient]:
    """The real app, answering a bug with the 500 a browser would get (not an exception)."""
    app = build_app(Settings.load(env=env))
    with TestClient(app, base_url=ORIGIN, raise_server_exceptions=False) as client:
        yield client


def test_no_body_gets_a_500_and_every_refusal_is_json(
    fuzz_client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = fuzz_client.app.state.runtime  # type: ignore[attr-defined]
    key = new_key(capsys, *sorted(runtime.sites))
    admin = {"authorization": f"Bearer {key}"}
    endpoints = [  # every route that reads a body (app.py), with what it needs besides
        ("POST", "/v1/decide", {}, {}),
        ("POST", "/v1/events", {}, {}),
        ("POST", "/v1/forms", {}, {}),
        ("POST", "/v1/tokens", {"site": "shop", "ttl": "1d"}, admin),
        ("PUT", "/v1/contacts/fuzz-1", {"site": "shop"}, admin),
        ("PATCH", "/v1/contacts/fuzz-1", {"site": "shop"}, admin),
        ("POST", "/v1/contacts/import", {"site": "shop"}, admin),
        ("POST", "/v1/reload", {}, admin),
        ("POST", "/dashboard/login", {}, {}),
        ("POST", "/dashboard/logout", {}, {}),
    ]
    bodies = corpus()
    statuses: Counter[int] = Counter()
    wrong = []
    for name, body, kind in bodies:
        for method, path, params, headers in endpoints:
            sent = {**headers, **({"content-type": kind} if kind else {})}
            fuzz_client.cookies.clear()
            answer = fuzz_client.request(method, path, params=params, headers=sent, content=body)
            statuses[answer.status_code] += 1
            if answer.status_code >= 500:
                wrong.append(f"{method} {path} {name}: {answer.status_code} {answer.text[:80]}")
            elif answer.status_code >= 400 and not path.startswith("/dashboard"):
                try:
                    error = answer.json()["error"]
                except (ValueError, KeyError, TypeError):
                    error = None
                if not isinstance(error, str) or not error:
                    wrong.append(f"{method} {path} {name}: {answer.status_code} not a JSON error")
    print(f"{len(bodies)} bodies x {len(endpoints)} endpoints = {sum(statuses.values())} requests")
    print("answers by status:", dict(sorted(statuses.items())))
    assert len(bodies) >= 300 and sum(statuses.values()) == len(bodies) * len(endpoints)
    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"site": "n\xffws"}', "body: expected UTF-8 text (invalid byte 0xff at byte 11)"),
        (b'{"site": "\xed\xa0\x80"}', "body: expected UTF-8 text (invalid byte 0xed at byte 10)"),
        (
            b'{"x": ' + b'{"a":' * 1000 + b"1" + b"}" * 1001,
            "body: expected JSON nested less deeply",
        ),
        (
            b'{"site": "news", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            "body: expected JSON nested less deeply",
        ),
        (b'{"site": NaN}', "body: expected a JSON object (JSON is malformed"),
        (
            b'{"site": "news", "page": {"url": "u"}, "events": [{"name": "e", "at": 1e400}]}',
            "body: Number out of range - at `$.events[0].at`",
        ),
    ],
)
def test_decode_names_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        decode(body, DecideRequest)
    assert refused.value.message.startswith(message), refused.value.message


def test_utf8_error_names_the_first_bad_byte() -> None:
    assert utf8_error("café".encode()) is None
    assert utf8_error(b"ok\xc3\x28") == "invalid byte 0xc3 at byte 2"
