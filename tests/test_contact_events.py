"""POST /v1/contacts/{id}/events through the real app: server-side events checked whole,
stored once, exported and erased with the person, and sent only with the site's admin key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from crm_site import MINUTE_MS, Crm, crm_app
from sitecue.api.contact_events import MAX_EVENTS

DAY_MS = 86_400_000


def _many(n: int) -> list[dict[str, Any]]:
    return [{"name": "email_open"}] * n


@pytest.fixture
def crm(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Crm]:
    yield from crm_app(env, monkeypatch, capsys)


def test_a_retried_batch_is_stored_once_and_counted_as_duplicate(crm: Crm) -> None:
    now = crm.clock.now
    batch = [
        {"name": "store_purchase", "at": now - DAY_MS, "value": 59.9, "id": "order-1017"},
        {"name": "email_open", "id": "open-1"},
    ]
    assert crm.send("carol", batch) == {"stored": 2, "duplicate": 0}
    assert crm.send("carol", batch) == {"stored": 0, "duplicate": 2}
    lines = b'{"name": "email_open", "id": "open-1"}\n\n{"name": "email_open", "id": "open-2"}\n'
    answer = crm.admin(
        "POST",
        "/v1/contacts/carol/events",
        content=lines,
        headers={"content-type": "application/x-ndjson"},
    )
    assert answer.status_code == 200 and answer.json() == {"stored": 1, "duplicate": 1}

    export = crm.admin("GET", "/v1/contacts/carol/export")
    assert export.status_code == 200, export.text  # held, though no contact was stored
    held = export.json()["server_events"]
    assert [(e["name"], e["at"], e.get("value"), e["id"]) for e in held] == [
        ("store_purchase", now - DAY_MS, 59.9, "order-1017"),
        ("email_open", now, None, "open-1"),  # dated when it was received
        ("email_open", now, None, "open-2"),
    ]
    assert crm.admin("DELETE", "/v1/contacts/carol").status_code == 204
    assert crm.admin("GET", "/v1/contacts/carol/export").status_code == 404


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"name": "emial_open"}, "events[1].name: expected a trigger the site declares"),
        ({"name": 5}, "events[1].name: Expected `str`, got `int`"),
        ({"at": 1}, "events[1]: Object missing required field `name`"),
        ({"name": "email_open", "shop": "x"}, "events[1]: Object contains unknown field"),
        ({"name": "email_open", "at": "today"}, "events[1].at: Expected `int | null`"),
        ({"name": "email_open", "at": 1.5}, "events[1].at: Expected `int | null`"),
        ({"name": "email_open", "at": "6 minutes ahead"}, "events[1].at: expected a time at"),
        ({"name": "email_open", "at": 0}, "events[1].at: expected a time within the last 400"),
        ({"name": "email_open", "at": 2**80}, "events[1].at: "),
        ({"name": "email_open", "value": "59"}, "events[1].value: Expected `float | null`"),
        ({"name": "email_open", "value": True}, "events[1].value: Expected `float | null`"),
        (
            {"name": "email_open", "value": 1e9 + 0.01},
            "events[1].value: Expected `float` <= 1000000000",
        ),
        (
            {"name": "store_purchase", "value": -2e9},
            "events[1].value: Expected `float` >= -1000000000",
        ),
        (
            {"name": "store_purchase", "value": 1e300},
            "events[1].value: Expected `float` <= 1000000000",
        ),
        ({"name": "email_open", "id": ""}, "events[1].id: expected an id of 1 to 128"),
        ({"name": "email_open", "id": "x" * 129}, "events[1].id: expected an id of 1 to 128"),
        ({"name": "email_open", "id": 7}, "events[1].id: Expected `str | null`"),
        ({"name": "email_open", "id": "a\u0000b"}, "events[1].id: expected an id without"),
        ("email_open", "events[1]: Expected `object`, got `str`"),
    ],
)
def test_one_bad_event_is_named_and_nothing_is_stored(crm: Crm, bad: Any, message: str) -> None:
    if isinstance(bad, dict) and bad.get("at") == "6 minutes ahead":
        bad = {**bad, "at": crm.clock.now + 6 * MINUTE_MS}  # 5 minutes of skew are allowed
    batch = [{"name": "store_purchase", "id": "good-1"}, bad]
    answer = crm.admin("POST", "/v1/contacts/carol/events", json=batch)
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["error"]
    assert crm.admin("GET", "/v1/contacts/carol/export").status_code == 404  # nothing stored


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ([], "events: expected at least one event"),
        (_many(MAX_EVENTS + 1), f"events: expected at most {MAX_EVENTS} events, got 1001"),
        ({"events": []}, "body: expected a JSON list of events"),
    ],
)
def test_a_batch_is_one_to_a_thousand_events(crm: Crm, batch: Any, message: str) -> None:
    answer = crm.admin("POST", "/v1/contacts/carol/events", json=batch)
    assert answer.status_code == 400 and message in answer.json()["error"], answer.text


def test_what_is_not_a_batch_of_events_is_refused_with_its_reason(crm: Crm) -> None:
    path = "/v1/contacts/carol/events"
    cases = [
        (b"[", "application/json", 400, "body: expected a JSON list of events"),
        (b'["\xff"]', "application/json", 400, "body: expected UTF-8 text"),
        (b"[" * 100_000, "application/json", 400, "body: expected"),
        (b'[{"name": "email_open", "value": 1e400}]', "application/json", 400,
         "body: expected a JSON list of events (Number out of range"),
        (b'{"name": "email_open"}\n{"name": ', "application/x-ndjson", 400,
         "events[1] (line 2): expected one JSON object"),
        (b'{"name": "email_open"}\n\n{"name": 1}', "application/x-ndjson", 400,
         "events[1] (line 3).name: Expected `str`, got `int`"),
        (b"\xff", "application/x-ndjson", 400, "line 1: expected UTF-8 text"),
        (b"name\nemail_open", "text/csv", 415, "content-type: expected one of"),
        (b"[]", "", 415, "content-type: expected one of"),
        (b" " * (1024 * 1024 + 1), "application/json", 413, "body: expected at most"),
    ]  # fmt: skip
    for body, kind, status, message in cases:
        answer = crm.admin("POST", path, content=body, headers={"content-type": kind})
        assert answer.status_code == status, (body[:40], answer.text)
        assert message in answer.json()["error"], answer.text
    too_long = "c" * 129
    answer = crm.admin("POST", f"/v1/contacts/{too_long}/events", json=_many(1))
    assert answer.status_code == 400 and "contact: expected an id of at most" in answer.text
    answer = crm.admin("POST", "/v1/contacts/c%00x/events", json=_many(1))
    assert answer.status_code == 400 and "contact: expected an id without control" in answer.text


def test_only_an_admin_key_for_the_site_may_send_events(
    crm: Crm, capsys: pytest.CaptureFixture[str]
) -> None:
    from admin_keys import new_key

    path = "/v1/contacts/carol/events"
    body = msgspec.json.encode(_many(1))
    plain = crm.client.post(path, params={"site": "crm"}, content=body)
    assert plain.status_code == 401
    news_only = new_key(capsys, "news")
    other = crm.client.post(
        path,
        params={"site": "crm"},
        content=body,
        headers={"authorization": f"Bearer {news_only}", "content-type": "application/json"},
    )
    assert other.status_code == 403
    assert crm.admin("GET", "/v1/contacts/carol/export").status_code == 404
