"""The tag's hot path (api/hotpath.py), through the real app: a POST to /v1/decide or
/v1/events is answered without the router, and answers as a routed request would: the
same errors, the same metrics, a 500 for what nobody raised on purpose; every other
method and path still takes Starlette's way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from sitecue.api import tag
from sitecue.app import build_app
from sitecue.settings import Settings

NEWS = "https://news.example"
PAGE = {"site": "news", "page": {"url": f"{NEWS}/news/articles/1.html"}}
EVENTS = {"site": "news", "events": [{"type": "event", "name": "subscribe"}]}


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the router handed to a route, from now on."""
    seen: list[str] = []
    handle = Route.handle

    async def spy(self: Route, scope: Any, receive: Any, send: Any) -> None:
        seen.append(f"{scope['method']} {self.path}")
        await handle(self, scope, receive, send)

    monkeypatch.setattr(Route, "handle", spy)
    return seen


@pytest.fixture
def app(env: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(build_app(Settings.load(env=env)), base_url=NEWS) as client:
        yield client


def test_the_tag_s_posts_skip_the_router_and_the_rest_do_not(
    app: TestClient, routed: list[str]
) -> None:
    decided = app.post("/v1/decide", json=PAGE, headers={"origin": NEWS})
    assert decided.status_code == 200, decided.text
    answer = decided.json()
    assert decided.headers["access-control-allow-origin"] == NEWS
    assert decided.headers["access-control-allow-credentials"] == "true"
    assert decided.headers["vary"] == "Origin"
    assert {c.split("=")[0] for c in decided.headers.get_list("set-cookie")} == {"sc_vid", "sc_s"}
    assert app.post("/v1/events", json=EVENTS, headers={"origin": NEWS}).status_code == 204
    assert routed == []
    assert app.options("/v1/decide", headers={"origin": NEWS}).status_code == 204
    refused = app.get("/v1/decide")
    assert refused.status_code == 405
    assert refused.json()["error"] == "GET /v1/decide: Method Not Allowed; this path takes POST"
    assert routed == ["OPTIONS /v1/decide", "GET /v1/decide"]
    assert answer["visitor"]


def test_a_bad_request_is_answered_as_on_any_route(app: TestClient) -> None:
    bad = app.post("/v1/decide", json={"site": "news"}, headers={"origin": NEWS})
    assert bad.status_code == 400
    assert bad.json() == {"error": "body: Object missing required field `page`"}
    foreign = app.post("/v1/events", json=EVENTS, headers={"origin": "https://evil.example"})
    assert foreign.status_code == 403 and "origin" in foreign.json()["error"]
    metrics = app.get("/metrics", headers={"authorization": "Bearer none"})
    assert metrics.status_code == 401  # the admin API is routed as before


def test_an_error_nobody_raised_on_purpose_is_a_500(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(tag, "decide", broken)
    app = build_app(Settings.load(env=env))
    with TestClient(app, base_url=NEWS, raise_server_exceptions=False) as client:
        answer = client.post("/v1/decide", json=PAGE, headers={"origin": NEWS})
        assert answer.status_code == 500
        counted = app.state.runtime.metrics.requests
        assert counted[("POST", "/v1/decide", 500)] == 1
