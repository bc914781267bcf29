"""GET /v1/decisions: filters, cursor pages, NDJSON export, and one site's key never reads
another site's log."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from admin_keys import ORIGIN, new_key
from sitecue.api import decisions as decisions_api

SHOP = "https://shop.example"


def visit(
    client: TestClient, visitor: str, path: str, events: list[str] = (), site: str = "news"
) -> None:  # type: ignore[assignment]
    """A page view by ``visitor``, who keeps their cookies from one view to the next."""
    origin = ORIGIN if site == "news" else SHOP
    if client.cookies.get("sc_vid") != visitor:
        client.cookies.clear()
        client.cookies.set("sc_vid", visitor, domain="news.example")
    body = {
        "site": site,
        "page": {"url": f"{origin}{path}"},
        "events": [{"name": e} for e in events],
    }
    assert client.post("/v1/decide", json=body, headers={"origin": origin}).status_code == 200


@pytest.fixture
def logged(client: TestClient) -> TestClient:
    """Seven news decisions by two readers (the third paywall of reader-a shows the rule)
    and two shop decisions."""
    for _ in range(3):
        visit(client, "reader-a-000000000001", "/news/articles/1.html", ["paywall_view"])
    for n in range(4):
        visit(client, "reader-b-000000000002", f"/news/articles/{n}.html")
    visit(client, "shopper-000000000003", "/shop/", site="shop")
    visit(client, "shopper-000000000003", "/shop/cart.html", site="shop")
    return client


def get(client: TestClient, key: str, **params: Any) -> Any:
    response = client.get(
        "/v1/decisions", params=params, headers={"authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_pages_cover_every_record_once_newest_first(
    logged: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    key = new_key(capsys, "news")
    seen, cursor = [], None
    while True:
        page = get(logged, key, site="news", limit=3, **({"cursor": cursor} if cursor else {}))
        seen += page["items"]
        cursor = page["next"]
        if cursor is None:
            break
    assert len(seen) == 7 and len({r["id"] for r in seen}) == 7
    assert [r["id"] for r in seen] == sorted((r["id"] for r in seen), reverse=True)
    assert {r["site"] for r in seen} == {"news"}


def test_filters(logged: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    key = new_key(capsys, "news")
    by_a = get(logged, key, site="news", visitor="reader-a-000000000001")["items"]
    assert len(by_a) == 3
    store = logged.app.state.runtime.store  # type: ignore[attr-defined]
    link = functools.partial(store.link, verified=True)
    logged.portal.call(link, "news", "reader-b-000000000002", "customer-7", 1)
    by_contact = get(logged, key, site="news", contact="customer-7")["items"]
    assert {r["visitor"] for r in by_contact} == {"reader-b-000000000002"} and len(by_contact) == 4
    shown = get(logged, key, site="news", rule="paywall-faq", matched="true")["items"]
    assert len(shown) == 1 and shown[0]["visitor"] == "reader-a-000000000001"
    verdict = next(v for v in shown[0]["verdicts"] if v["rule"] == "paywall-faq")
    assert verdict["matched"] and verdict["variant"] in ("faq", "control")
    not_shown = get(logged, key, site="news", rule="paywall-faq", matched="false")["items"]
    assert len(not_shown) == 6
    assert all(v["reason"] for r in not_shown for v in r["verdicts"])  # every miss says why
    variant = get(logged, key, site="news", variant=verdict["variant"])["items"]
    assert [r["id"] for r in variant] == [shown[0]["id"]]
    at = shown[0]["at"]
    assert (
        get(logged, key, site="news", **{"from": at, "until": at + 1})["items"][0]["id"]
        == shown[0]["id"]
    )
    assert get(logged, key, site="news", **{"from": at + 60_000})["items"] == []


def test_a_rule_whose_conditions_failed_has_no_verdict_and_reads_not_shown(
    logged: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """The log stores the verdicts that say why (store.verdicts): the news articles meet
    no rule's conditions but the third paywall's, so six records have no verdict, and the
    filters still find where each rule was not shown, in pages and in the export."""
    key = new_key(capsys, "news")
    items = get(logged, key, site="news")["items"]
    assert sorted(len(r["verdicts"]) for r in items) == [0, 0, 0, 0, 0, 0, 1]
    assert len(get(logged, key, site="news", rule="newsletter", matched="false")["items"]) == 7
    nothing = get(logged, key, site="news", matched="false")["items"]
    assert len(nothing) == 6 and all(r["verdicts"] == [] for r in nothing)
    assert get(logged, key, site="news", rule="newsletter")["items"] == []  # never in play
    export = logged.get(
        "/v1/decisions",
        params={"site": "news", "rule": "newsletter", "matched": "false"},
        headers={"authorization": f"Bearer {key}", "accept": "application/x-ndjson"},
    )
    assert len(export.text.splitlines()) == 7


def test_ndjson_export_streams_everything_in_chunks(
    logged: TestClient, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(decisions_api, "EXPORT_CHUNK", 2)  # several chunks for seven records
    key = new_key(capsys, "news")
    response = logged.get(
        "/v1/decisions",
        params={"site": "news"},
        headers={"authorization": f"Bearer {key}", "accept": "application/x-ndjson"},
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "application/x-ndjson"
    )
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert len(lines) == 7 and len({r["id"] for r in lines}) == 7


def test_a_news_key_cannot_read_the_shop(
    logged: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    key = new_key(capsys, "news")
    response = logged.get(
        "/v1/decisions", params={"site": "shop"}, headers={"authorization": f"Bearer {key}"}
    )
    assert response.status_code == 403
    assert response.json()["error"] == "this API key is for news; it may not act on shop"
    export = logged.get(
        "/v1/decisions",
        params={"site": "shop"},
        headers={"authorization": f"Bearer {key}", "accept": "application/x-ndjson"},
    )
    assert export.status_code == 403


def test_without_a_key(client: TestClient) -> None:
    assert client.get("/v1/decisions", params={"site": "news"}).status_code == 401


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "site: expected the site whose decisions to list"),
        ({"site": "news", "limit": "0"}, "limit: expected a whole number from 1 to 1000, got '0'"),
        ({"site": "news", "limit": "lots"}, "limit: expected a whole number from 1 to 1000"),
        ({"site": "news", "matched": "maybe"}, "matched: expected true or false, got 'maybe'"),
        ({"site": "news", "cursor": "abc"}, "cursor: expected the 'next' value of a previous page"),
        ({"site": "news", "from": "-5"}, "from: expected a whole number"),
        ({"site": "news", "until": "yesterday"}, "until: expected a whole number"),
    ],
)
def test_bad_parameters_are_named(
    client: TestClient, capsys: pytest.CaptureFixture[str], params: dict[str, str], message: str
) -> None:
    key = new_key(capsys, "news", "shop")
    response = client.get(
        "/v1/decisions", params=params, headers={"authorization": f"Bearer {key}"}
    )
    assert response.status_code == 400 and response.json()["error"].startswith(message)
