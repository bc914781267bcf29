"""Which pages may call the tag's endpoints (:mod:`sitecue.origins`): a site's own origins
everywhere, a same-origin page only in the demo, and every refused origin logged once, with
the setting that would allow it, in bounded memory."""

from __future__ import annotations

import logging

import pytest
from starlette.requests import Request
from starlette.testclient import TestClient

from sitecue.app import build_app
from sitecue.origins import RefusedOrigins, allowed
from sitecue.settings import Settings

DECIDE = {"site": "news", "page": {"url": "x"}}
LISTED = frozenset({"https://news.example"})


def request_to(url: str, host: str) -> Request:
    """A request as the server sees it: the scheme of the connection and the Host header."""
    scheme, _, _ = url.partition("://")
    return Request(
        {
            "type": "http",
            "method": "POST",
            "scheme": scheme,
            "path": "/v1/decide",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", host.encode())],
            "server": None,
        }
    )


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]


def test_a_listed_origin_is_allowed_everywhere_and_a_same_origin_page_only_in_the_demo() -> None:
    lan = request_to("http://", "mybox.lan:9000")
    assert allowed(lan, "https://news.example", LISTED, same_origin=False)
    assert not allowed(lan, "http://mybox.lan:9000", LISTED, same_origin=False)  # serve
    assert allowed(lan, "http://mybox.lan:9000", LISTED, same_origin=True)  # the demo
    # Another site's page calling the demo: its Origin is its own, never the demo's Host.
    assert not allowed(lan, "https://evil.example", LISTED, same_origin=True)
    assert not allowed(lan, "null", LISTED, same_origin=True)
    # Same host, another scheme or port: another origin (an http page is not the https one).
    assert not allowed(lan, "https://mybox.lan:9000", LISTED, same_origin=True)
    assert not allowed(lan, "http://mybox.lan:9001", LISTED, same_origin=True)
    assert not allowed(lan, "http://mybox.lan", LISTED, same_origin=True)
    # A browser omits a default port in both headers, and lower-cases the host in Origin.
    assert allowed(request_to("http://", "MyBox.lan:80"), "http://mybox.lan", LISTED, True)


def test_serve_refuses_a_same_origin_page_it_does_not_list_and_logs_it_once(
    env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sitecue")
    lan = "http://mybox.lan:9000"
    with TestClient(build_app(Settings.load(env=env)), base_url=lan) as client:
        for _ in range(3):
            refused = client.post("/v1/decide", json=DECIDE, headers={"origin": lan})
            assert refused.status_code == 403
        assert client.post("/v1/decide", json=DECIDE, headers={"origin": "https://news.example"})
    [line] = refusals(caplog)
    assert "'http://mybox.lan:9000'" in line and "site 'news'" in line
    assert '"origins"' in line and "sites/news.json" in line and "SITECUE_ALLOW_ORIGINS" in line
    assert "the demo" not in line  # serve allows no same-origin page, so says nothing of it


def test_each_site_and_origin_is_logged_once_and_a_preflight_names_every_site(
    env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sitecue")
    with TestClient(build_app(Settings.load(env=env)), base_url="https://news.example") as client:
        for origin in ("https://a.example", "https://b.example", "https://a.example"):
            for site in ("news", "shop", "news"):
                body = {**DECIDE, "site": site}
                assert client.post("/v1/decide", json=body, headers={"origin": origin}).is_error
        preflight = {"origin": "https://c.example", "access-control-request-method": "POST"}
        for _ in range(2):
            assert client.options("/v1/decide", headers=preflight).status_code == 403
    lines = refusals(caplog)
    assert len(lines) == 5, lines  # a and b, each for news and shop; c once
    assert sum("'https://a.example' to site 'shop'" in line for line in lines) == 1
    assert "'https://c.example' to any site" in lines[-1]
    assert "SITECUE_ALLOW_ORIGINS" in lines[-1]


def test_the_memory_of_refused_origins_is_bounded_and_says_when_it_is_full(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client sending made-up origins by the million neither grows the memory nor floods
    the log: past the limit, one line says the rest are not logged."""
    caplog.set_level(logging.WARNING, logger="sitecue")
    refused = RefusedOrigins(limit=3)
    request = request_to("https://", "news.example")
    for i in range(1000):
        refused.log(request, "news", f"https://{i}.example" + "x" * 10_000, same_origin=False)
    lines = refusals(caplog)
    assert len(lines) == 4 and "the rest are not" in lines[-1]
    assert len(refused._seen) == 3
    assert all(len(line) < 1000 for line in lines)  # a huge origin is cut short in the log
